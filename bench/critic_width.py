"""What a wider realism critic costs: seconds per epoch of the Fashion recipe at each critic width.

    python bench/critic_width.py [--widths 16,48,64] [--baseline REV] [--rounds 2] [--epochs 3]
                                 [--images 15360] [--also-with "FLAGS"] [--tag TAG]

Runs the `fashion_conditional` line of checkpoints/make_all.sh with `--critic-width W` on the
first N training images, widths alternating round by round in fresh processes, and reads the
"epoch i/N (x s)" lines. Per run: the median of epochs 2..N (the first one traces). The ratio
to the first width (16, the shipped critic) is what matters: the machines are shared, so
absolute seconds drift by 20% within an hour. `--baseline REV` adds the shipped width at an
older commit (its code from `git archive`), alternating with the rest, and takes the ratios
against it: what a change to the training step bought. `--also-with "--ema-momentum 0.999"`
times every width a second time with those flags added, alternating with the rest: what an
option costs. Writes bench/results/critic_width.json (or critic_width_TAG.json).
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (add_tag_argument, machine, offline_keras_home, spread,  # noqa: E402
                    write_result)

ROOT = Path(__file__).resolve().parents[1]
EPOCH_LINE = re.compile(r"^epoch \d+/\d+ \(([\d.]+) s\)", re.M)
FASHION_RECIPE = [  # checkpoints/make_all.sh, fashion_conditional, without --epochs and --out
    "--dataset", "fashion_mnist", "--arch", "conv", "--conv-width", "32", "--latent-dim", "16",
    "--hidden", "256", "--conditional", "--encoder-conditional", "--consistency-weight", "4",
    "--realism-weight", "3", "--realism-on-reconstructions", "--style-prior-components", "0",
    "--beta", "1", "--recon-loss", "bce", "--batch-size", "128", "--lr", "1e-3", "--seed", "0"]


def run(width: int, epochs: int, images: int, code: Path = ROOT, flags=()) -> dict:
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "vae_core", "train", *FASHION_RECIPE, *flags,
               "--critic-width", str(width), "--epochs", str(epochs),
               "--max-train-images", str(images), "--no-eval", "--out", str(Path(out) / "c")]
        proc = subprocess.run(cmd, cwd=code, capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(code)})
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    times = [float(s) for s in EPOCH_LINE.findall(proc.stdout)]
    return {"epoch_seconds": times, "steady": statistics.median(times[1:] or times)}


def checkout(rev: str, into: Path) -> Path:
    """The repository's files at commit `rev`, unpacked under `into`."""
    archive = subprocess.run(["git", "archive", rev], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--widths", default="16,48,64")
    parser.add_argument("--baseline", metavar="REV",
                        help="also time width 16 at this commit, and take ratios against it")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--images", type=int, default=15360)
    parser.add_argument("--also-with", metavar="FLAGS", default="",
                        help="also time every width with these train flags added")
    add_tag_argument(parser)
    args = parser.parse_args()
    offline_keras_home()
    extra = shlex.split(args.also_with)
    with tempfile.TemporaryDirectory() as scratch:
        variants = {w: (int(w), ROOT, []) for w in args.widths.split(",")}
        if extra:
            variants.update({f"{w} {args.also_with}": (int(w), ROOT, extra)
                             for w in args.widths.split(",")})
        if args.baseline:
            variants = {f"{args.baseline}:16": (16, checkout(args.baseline, Path(scratch)), []),
                        **variants}
        runs = {name: [] for name in variants}
        for i in range(args.rounds):
            for name, (width, code, flags) in variants.items():
                r = run(width, args.epochs, args.images, code, flags)
                runs[name].append(r)
                print(f"round {i + 1} critic width {name}: {r}", flush=True)
    steady = {name: statistics.median(r["steady"] for r in v) for name, v in runs.items()}
    base = next(iter(runs))
    write_result("critic_width", {
        "command": shlex.join(["python", "bench/critic_width.py", *sys.argv[1:]]),
        "machine": machine(), "epochs": args.epochs, "train_images": args.images,
        "runs": runs,
        "epoch_seconds": {name: spread(r["steady"] for r in v) for name, v in runs.items()},
        f"epoch_time_ratio_to_{base}": {
            name: round(s / steady[base], 3) for name, s in steady.items()},
    }, args.tag)


if __name__ == "__main__":
    main()
