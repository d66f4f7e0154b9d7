"""Device helpers: bf16 autocast only on a GPU unless asked for, tensors follow the model's device."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from sentinel_async import devices  # noqa: E402
from sentinel_async.errors import SentinelError  # noqa: E402
from sentinel_async.policies import resolve_device  # noqa: E402


def test_an_explicit_bf16_setting_wins() -> None:
    cpu = torch.device("cpu")
    assert devices.use_bf16(True, cpu) is True
    assert devices.use_bf16(False, cpu) is False


def test_auto_bf16_is_off_on_the_cpu() -> None:
    # measured: fp32 trains faster than autocast bf16 on the CPUs we have (see sentinel_async.devices)
    assert devices.use_bf16(None, torch.device("cpu")) is False


def test_model_device_and_autocast() -> None:
    model = torch.nn.Linear(2, 2)
    assert devices.model_device(model) == torch.device("cpu")
    with devices.autocast(torch.device("cpu"), False):
        assert model(torch.ones(1, 2)).dtype == torch.float32


def test_a_cuda_device_without_cuda_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(SentinelError, match="no CUDA device"):
        resolve_device("cuda")
