"""Whether this CPU has bfloat16 units, which decides whether the bf16 option can pay here.

bf16 speed comes from dot-product units: with AVX512_BF16 or AMX-BF16 a conv model's epoch ran
1.54x as fast in bf16; without them oneDNN emulates bf16, and it was slower than float32 (both
measured: README, Speed).
"""

from __future__ import annotations

import functools
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
