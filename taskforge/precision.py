"""Choice of numeric precision, with the reason logged."""

from __future__ import annotations

import logging
from pathlib import Path

from taskforge.config import PRECISIONS
from taskforge.errors import ConfigError

logger = logging.getLogger(__name__)

# CPU flags (Linux /proc/cpuinfo) of instruction sets with native bf16 matrix math: Intel AMX and
# AVX512-BF16, the latter also on AMD Zen 4 and newer.
FAST_BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


def resolve_precision(requested: str, use_cpu: bool) -> tuple[str, str]:
    """Return the precision to run in and a sentence saying why.

    ``auto`` picks bf16 on a CUDA GPU that supports it and on a CPU with native bf16 instructions,
    fp16 on other CUDA GPUs, and fp32 elsewhere. An explicit choice the hardware cannot run raises.
    """
    import torch

    if requested not in PRECISIONS:
        raise ConfigError(f"--precision must be one of {', '.join(PRECISIONS)}, got {requested!r}")
    on_cuda = torch.cuda.is_available() and not use_cpu
    if requested == "fp16" and not on_cuda:
        raise ConfigError("--precision fp16 needs a CUDA GPU; on the CPU pass --precision bf16 or fp32")
    if requested != "auto":
        return requested, f"--precision {requested} was requested"

    if on_cuda:
        if torch.cuda.is_bf16_supported():
            return "bf16", f"auto: {torch.cuda.get_device_name()} supports bf16"
        return "fp16", f"auto: {torch.cuda.get_device_name()} lacks bf16, so fp16 with loss scaling"
    flag = cpu_bf16_flag()
    if flag is not None:
        return "bf16", f"auto: the CPU has {flag}, which runs bf16 matrix math natively"
    return "fp32", "auto: no GPU, and the CPU has no native bf16 instructions"


def cpu_bf16_flag() -> str | None:
    """Return the first CPU flag that marks native bf16 math, or None."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():
        # NOTE: only Linux exposes CPU flags this way; elsewhere auto falls back to fp32 on the CPU.
        return None
    flags: set[str] = set()
    for line in cpuinfo.read_text(errors="replace").splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
            break
    return next((flag for flag in FAST_BF16_CPU_FLAGS if flag in flags), None)


def mixed_precision_name(precision: str) -> str:
    """Return Accelerate's ``mixed_precision`` value for a taskforge precision."""
    return {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}[precision]
