"""What this CPU is: whether it has bfloat16 units (which decides whether the bf16 option can pay
here), and its name (a training time means little without it).

bf16 speed comes from dot-product units: with AVX512_BF16 or AMX-BF16 a conv model's epoch ran
1.54x as fast in bf16; without them oneDNN emulates bf16, and it was slower than float32 (both
measured: README, Speed).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

BF16_UNITS = ("amx_bf16", "avx512_bf16")


def cpuinfo_field(name: str, cpuinfo: str = "/proc/cpuinfo") -> str | None:
    """The value of the first `name : value` line of /proc/cpuinfo (None off Linux or if absent)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, colon, value = line.partition(":")
        if colon and key.strip() == name:
            return value.strip()
    return None


@functools.cache
def has_bf16_units(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """True when the CPU advertises bf16 dot-product units (read on Linux; elsewhere False)."""
    flags = (cpuinfo_field("flags", cpuinfo) or "").split()
    return any(unit in flags for unit in BF16_UNITS)


@functools.cache
def cpu_description(cpuinfo: str = "/proc/cpuinfo") -> str:
    """'<model name>, <n> CPUs' (read on Linux; elsewhere only the count), for a card's time."""
    model = cpuinfo_field("model name", cpuinfo) or "an unnamed CPU"
    usable = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
              else os.cpu_count())
    return f"{model}, {usable} CPUs"
