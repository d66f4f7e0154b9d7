"""Where a model runs and what its hardware does fast: the device of a model, bf16 autocast.

bf16 autocast pays off on a GPU with bf16 support; "auto" uses it there and nowhere else. On the CPUs we have
measured, fp32 trains faster than autocast bf16: 0.64x with autocast on a 2-core AVX512-BF16 Xeon (3.9k vs
6.1k tokens/s on the 1M bootstrap model, 1.7k vs 2.5k on the 5M one) and 0.18x on an AVX2-only machine (where
torch emulates bf16). Ask for it explicitly (`bf16=True`) to try it elsewhere. torch is imported lazily.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any


def model_device(model: Any) -> Any:
    """The `torch.device` of a model's first parameter (CPU for a model without parameters)."""
    import torch

    for parameter in model.parameters():
        return parameter.device
    return torch.device("cpu")


def use_bf16(setting: bool | None, device: Any) -> bool:
    """Resolve a bf16 setting: True/False as given; None ("auto"): on a CUDA device with bf16 support only."""
    if setting is not None:
        return setting
    if device.type == "cuda":
        import torch

        return bool(torch.cuda.is_bf16_supported())
    return False


def autocast(device: Any, enabled: bool) -> AbstractContextManager[Any]:
    """bf16 autocast on `device` (a no-op context when not `enabled`)."""
    import torch

    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)
