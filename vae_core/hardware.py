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


@functools.cache
def has_bf16_units(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """True when the CPU advertises bf16 dot-product units (read on Linux; elsewhere False)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return False
    flags = next((line for line in text.splitlines() if line.startswith("flags")), "")
    return any(unit in flags.split(":", 1)[-1].split() for unit in BF16_UNITS)


@functools.cache
def cpu_description(cpuinfo: str = "/proc/cpuinfo") -> str:
    """'<model name>, <n> CPUs' (read on Linux; elsewhere only the count), for a card's time."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        text = ""
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                  if line.startswith("model name") and ":" in line), "an unnamed CPU")
    usable = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
              else os.cpu_count())
    return f"{model}, {usable} CPUs"
