"""Target 2: whole-process wall time of `python -m vae_core train` vs the keras.io-style script.

    python bench/engine_vs_keras.py [--pairs 5] [--epochs 3] [--engine-flags="--lr 2e-3"] [--tag T]

Alternates (A B A B ...) the two commands below in fresh processes on the same machine:

  A  python -m vae_core train --arch mlp --latent-dim 20 --hidden 512 --batch-size 128
        --epochs 3 --out <tmp>          (validation each epoch, test-set evaluation, checkpoint)
  B  python bench/reference_keras_io_vae.py --arch mlp --epochs 3

and records each one's wall time and CPU seconds (user + sys of the child: steadier than wall
time on a shared machine). One untimed run of each goes first, so both find their files in the
page cache and vae_core finds its .npy dataset cache built (a cold first run also converts the
Keras download once; it is reported separately as `engine_cold_first_run`).
Writes bench/results/engine_vs_keras.json.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (add_tag_argument, machine, offline_keras_home, spread,  # noqa: E402
                    write_result)

ROOT = Path(__file__).resolve().parents[1]


def timed(cmd: list[str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise RuntimeError(f"{cmd} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--arch", choices=("mlp", "conv"), default="mlp")
    parser.add_argument("--engine-flags", default="",
                        help="extra CLI flags for the engine side (e.g. '--lr 2e-3')")
    add_tag_argument(parser)
    args = parser.parse_args()
    cache_set_by_user = "VAE_CORE_DATA_CACHE" in os.environ
    offline_keras_home()
    out = Path(tempfile.mkdtemp(prefix="vae-bench-ckpt-"))
    shape = (["--latent-dim", "20", "--hidden", "512"] if args.arch == "mlp"
             else ["--latent-dim", "2", "--hidden", "16"])
    engine = [sys.executable, "-m", "vae_core", "train", "--arch", args.arch, *shape,
              "--batch-size", "128", "--epochs", str(args.epochs), "--out", str(out / "ckpt"),
              *args.engine_flags.split()]
    reference = [sys.executable, "bench/reference_keras_io_vae.py", "--arch", args.arch,
                 "--epochs", str(args.epochs)]
    cold = None
    if not cache_set_by_user:  # a private disk cache, so the first run below really is cold
        os.environ["VAE_CORE_DATA_CACHE"] = str(out / "data-cache")
        cold = timed(engine)
    else:
        timed(engine)
    timed(reference)
    runs = {"engine": [], "reference": []}
    for i in range(args.pairs):
        for side, cmd in (("engine", engine), ("reference", reference)):
            wall, cpu = timed(cmd)
            runs[side].append({"wall": wall, "cpu": cpu})
            print(f"pair {i + 1} {side}: wall {wall:.2f} s, cpu {cpu:.2f} s", flush=True)
    shutil.rmtree(out, ignore_errors=True)

    walls = {s: [r["wall"] for r in v] for s, v in runs.items()}
    cpus = {s: [r["cpu"] for r in v] for s, v in runs.items()}
    result = {
        "what": f"whole-process seconds, {args.arch}, batch 128, {args.epochs} epochs: "
                "python -m vae_core train (with validation, evaluation, checkpoint) vs the "
                "keras.io-style reference script",
        "command": f"python bench/engine_vs_keras.py --arch {args.arch} --pairs {args.pairs} "
                   f"--epochs {args.epochs}"
                   + (f" --engine-flags='{args.engine_flags}'" if args.engine_flags else ""),
        "engine_cmd": " ".join(engine[1:]), "reference_cmd": " ".join(reference[1:]),
        "machine": machine(),
        "engine_wall": spread(walls["engine"]), "reference_wall": spread(walls["reference"]),
        "engine_cpu": spread(cpus["engine"]), "reference_cpu": spread(cpus["reference"]),
        "wall_ratio_per_pair": [round(a / b, 3) for a, b in zip(walls["engine"],
                                                                walls["reference"])],
        "wall_ratio_of_medians": round(statistics.median(walls["engine"])
                                       / statistics.median(walls["reference"]), 3),
        "cpu_ratio_of_medians": round(statistics.median(cpus["engine"])
                                      / statistics.median(cpus["reference"]), 3),
        "engine_cold_first_run": None if cold is None else {"wall": round(cold[0], 2),
                                                            "cpu": round(cold[1], 2)},
        "target": "wall ratio <= 0.6",
    }
    write_result(f"engine_vs_keras_{args.arch}", result, args.tag)


if __name__ == "__main__":
    main()
