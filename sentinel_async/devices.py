"""Where a model runs and what its hardware does fast: the device of a model, native bf16, autocast.

bf16 autocast pays off only where the hardware computes in bf16 (a recent GPU; a CPU with AVX512-BF16 or AMX).
Elsewhere torch emulates it, and a CPU without those instructions trains 5x slower than in fp32 (measured on
an AVX2-only 2-core machine: 400 vs 2,200 tokens/s on the 1M bootstrap model), so "auto" means fp32 there.
torch is imported lazily.
"""

from __future__ import annotations

import functools
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

_CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Whether this CPU has bf16 instructions (Linux `/proc/cpuinfo` flags; False when unknown)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return any(flag in flags for flag in _CPU_BF16_FLAGS)


def model_device(model: Any) -> Any:
    """The `torch.device` of a model's first parameter (CPU for a model without parameters)."""
    import torch

    for parameter in model.parameters():
        return parameter.device
    return torch.device("cpu")


def use_bf16(setting: bool | None, device: Any) -> bool:
    """Resolve a bf16 setting: True/False as given; None ("auto") when the device computes bf16 natively."""
    if setting is not None:
        return setting
    if device.type == "cuda":
        import torch

        return bool(torch.cuda.is_bf16_supported())
    return device.type == "cpu" and cpu_has_native_bf16()


def autocast(device: Any, enabled: bool) -> AbstractContextManager[Any]:
    """bf16 autocast on `device` (a no-op context when not `enabled`)."""
    import torch

    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)
