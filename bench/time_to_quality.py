"""Seconds to a good model: each quick preset against the naive 5-epoch conditional MLP.

    python bench/time_to_quality.py [--pairs 2] [--presets quick_conditional_mnist,...] [--tag T]

For each preset, runs the whole CLI process `python -m vae_core train --preset NAME` and the
naive model of the same dataset (`--conditional --latent-dim 2 --epochs 5`, everything else the
defaults) alternately, --pairs times, timing each process (wall and CPU seconds) side by side.
Then it scores the last checkpoint of each with `python -m vae_core quality` (the shipped judge:
agreement over 1,000 style seeds x 10 classes, the Frechet distance of those 10,000 samples to
the test set over the real-vs-real floor) and reads how the first epoch's samples look to the
judge (the ten digits of the run's epoch-1 snapshot, the live view's first picture). A preset's
"seconds to the bars" is its process time when its model meets every bar of its dataset.
Writes bench/results/time_to_quality[_TAG].json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine, offline_keras_home, write_result  # noqa: E402

BARS = {  # issue 30: agreement, every class, sample FD / floor
    "mnist": {"agreement": 0.98, "every_class": 0.95, "fd_ratio": 20.0},
    "fashion_mnist": {"agreement": 0.93, "every_class": 0.80, "fd_ratio": 40.0},
}
NAIVE = ["--conditional", "--latent-dim", "2", "--epochs", "5"]


def timed(args: list[str]) -> dict:
    """Wall and CPU seconds of one whole CLI process (imports, data, training, evaluation)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "vae_core", *args], cwd=ROOT,
                          capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise SystemExit(f"error: {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1)}


def quality(folder: Path) -> dict:
    proc = subprocess.run([sys.executable, "-m", "vae_core", "quality", str(folder),
                           "--no-write"], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"error: quality {folder} failed:\n{proc.stderr[-2000:]}")
    q = json.loads(proc.stdout)
    return {"agreement": q["conditional"]["agreement"],
            "every_class": min(q["conditional"]["per_class_agreement"]),
            "fd_ratio": q["fd"]["samples_ratio"],
            "recon_fd_ratio": q["fd"]["reconstructions_ratio"], "sampler": q["fd"]["sampler"]}


def first_epoch_readable(folder: Path, dataset: str) -> float:
    """The share of the epoch-1 snapshot's ten digits the judge reads as the digit asked for."""
    import numpy as np

    from vae_core.history import TrainingSnapshots
    from vae_core.quality import judge_predict, load_judge

    snaps = TrainingSnapshots.from_npz(folder / "training_snapshots.npz")
    first = snaps.samples[list(snaps.epochs).index(1)] / 255.0
    read = judge_predict(load_judge(dataset), first).argmax(1)
    return float((read == np.arange(10)).mean())


def meets(figures: dict, dataset: str) -> bool:
    bars = BARS[dataset]
    return (figures["agreement"] >= bars["agreement"]
            and figures["every_class"] >= bars["every_class"]
            and figures["fd_ratio"] <= bars["fd_ratio"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--presets", default="quick_conditional_mnist,quick_conditional_fashion")
    parser.add_argument("--tag", default=None)
    args = parser.parse_args(argv)
    offline_keras_home()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the app runs numpy (ui.runtime)
    from vae_core.config import PRESETS

    result = {"command": " ".join(["python bench/time_to_quality.py", *(argv or sys.argv[1:])]),
              "machine": machine(), "bars": BARS, "naive_flags": NAIVE, "presets": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.presets.split(","):
            dataset = PRESETS[name].dataset
            runs = {"preset": [], "naive": []}
            for _ in range(args.pairs):  # side by side: preset, naive, preset, naive, ...
                runs["preset"].append(timed(["train", "--preset", name,
                                             "--out", f"{tmp}/{name}"]))
                runs["naive"].append(timed(["train", "--dataset", dataset, *NAIVE,
                                            "--out", f"{tmp}/{name}_naive"]))
            row = {"dataset": dataset}
            for side, folder in (("preset", Path(tmp, name)),
                                 ("naive", Path(tmp, f"{name}_naive"))):
                figures = quality(folder)
                wall = round(statistics.median(r["wall_s"] for r in runs[side]), 1)
                ok = meets(figures, dataset)
                row[side] = {"runs": runs[side], "wall_s_median": wall, **figures,
                             "first_epoch_readable": first_epoch_readable(folder, dataset),
                             "meets_bars": ok, "seconds_to_bars": wall if ok else None}
            row["wall_ratio_preset_to_naive"] = round(
                row["preset"]["wall_s_median"] / row["naive"]["wall_s_median"], 2)
            result["presets"][name] = row
    write_result("time_to_quality", result, args.tag)
    print("| model | whole CLI process, s (median) | agreement (worst class) | sample FD / floor "
          "| first-epoch digits read right | meets the bars |\n|---|---|---|---|---|---|")
    for name, row in result["presets"].items():
        for side, label in (("preset", name), ("naive", f"naive 5-epoch MLP ({row['dataset']})")):
            r = row[side]
            print(f"| {label} | {r['wall_s_median']} | {100 * r['agreement']:.1f}% "
                  f"({100 * r['every_class']:.1f}%) | {r['fd_ratio']:.1f}x | "
                  f"{100 * r['first_epoch_readable']:.0f}% | "
                  f"{'yes' if r['meets_bars'] else 'no'} |")
        print(f"| ratio {name} / naive | {row['wall_ratio_preset_to_naive']} | | | | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
