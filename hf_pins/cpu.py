"""What the CPU is: model name and instruction-set flags, read once from /proc/cpuinfo.

DeepSparse needs AVX2, bfloat16 teachers need AVX512-BF16 or AMX, and a benchmark figure is only meaningful next to the
CPU it was measured on; all of them ask here.
"""

from __future__ import annotations

import functools
import platform
from dataclasses import dataclass


@dataclass(frozen=True)
class CpuInfo:
    model: str
    flags: frozenset[str]


def parse_cpuinfo(text: str) -> CpuInfo:
    """The first processor's model name and flags (`flags` on x86, `Features` on ARM) from /proc/cpuinfo's text."""
    model, flags = "", None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key in ("flags", "Features") and flags is None:
            flags = frozenset(value.split())
        if model and flags is not None:
            break
    return CpuInfo(model=model or platform.processor() or platform.machine(), flags=flags or frozenset())


@functools.lru_cache(maxsize=1)
def cpu_info() -> CpuInfo:
    """This machine's CPU; off Linux (no /proc/cpuinfo) the platform's name and no flags."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            return parse_cpuinfo(fh.read())
    except OSError:
        return parse_cpuinfo("")


def cpu_flags() -> frozenset[str]:
    return cpu_info().flags
