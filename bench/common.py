"""Helpers shared by the benchmark scripts: offline data, machine description, spreads, JSON."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def offline_keras_home():
    """Point KERAS_HOME at a scratch folder whose datasets/ is the shared offline cache (for
    this process and its children), unless KERAS_HOME is already set."""
    if "KERAS_HOME" not in os.environ and SHARED_DATASETS.is_dir():
        home = Path(tempfile.mkdtemp(prefix="vae-bench-keras-"))
        (home / "datasets").symlink_to(SHARED_DATASETS)
        os.environ["KERAS_HOME"] = str(home)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # One dataset disk cache for all benchmark runs (as the tests do), not one per scratch home.
    os.environ.setdefault("VAE_CORE_DATA_CACHE",
                          str(Path(tempfile.gettempdir()) / "vae-lab-data-cache"))


def machine() -> dict:
    info = {"cpu_count": os.cpu_count(), "python": platform.python_version()}
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in lscpu.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("Model name", "CPU(s)"):
                info[key.strip()] = value.strip()
        flags = next((l for l in lscpu.splitlines() if l.startswith("Flags")), "")
        info["bf16_hardware"] = any(f in flags.split() for f in ("avx512_bf16", "amx_bf16"))
    except OSError:
        pass
    try:
        info["load_average_at_start"] = os.getloadavg()
    except OSError:
        pass
    return info


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds that process `pid` has used so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def add_tag_argument(parser):
    parser.add_argument("--tag", default="",
                        help="write bench/results/<name>_<tag>.json, beside the recorded run")


def spread(values) -> dict:
    values = list(values)
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "max": round(max(values), 3), "n": len(values),
            "values": [round(v, 3) for v in values]}


def write_result(name: str, result: dict, tag: str = "") -> Path:
    """Writes bench/results/<name>.json, or <name>_<tag>.json: a tag keeps a run on another
    machine or with other flags beside the recorded one instead of over it."""
    RESULTS.mkdir(exist_ok=True)
    result = {"finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **result}
    if tag and "--tag" not in result.get("command", "--tag"):  # the command reproduces the file
        result["command"] += f" --tag {tag}"
    path = RESULTS / (f"{name}_{tag}.json" if tag else f"{name}.json")
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "epoch_seconds"}, indent=2))
    return path
