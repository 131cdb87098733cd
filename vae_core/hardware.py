"""What this CPU is called: a training time means little without it."""

from __future__ import annotations

import functools
import os
from pathlib import Path


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
def cpu_description(cpuinfo: str = "/proc/cpuinfo") -> str:
    """'<model name>, <n> CPUs' (read on Linux; elsewhere only the count), for a card's time."""
    model = cpuinfo_field("model name", cpuinfo) or "an unnamed CPU"
    usable = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
              else os.cpu_count())
    return f"{model}, {usable} CPUs"
