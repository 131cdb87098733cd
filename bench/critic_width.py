"""What a wider realism critic costs: seconds per epoch of the Fashion recipe at each critic width.

    python bench/critic_width.py [--widths 16,48,64] [--rounds 2] [--epochs 3] [--images 15360]

Runs the `fashion_conditional` line of checkpoints/make_all.sh with `--critic-width W` on the
first N training images, widths alternating round by round in fresh processes, and reads the
"epoch i/N (x s)" lines. Per run: the median of epochs 2..N (the first one traces). The ratio
to width 16 (the shipped critic) is what matters: the machines are shared, so absolute seconds
drift by 20% within an hour. Writes bench/results/critic_width.json.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, offline_keras_home, spread, write_result  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EPOCH_LINE = re.compile(r"^epoch \d+/\d+ \(([\d.]+) s\)", re.M)
FASHION_RECIPE = [  # checkpoints/make_all.sh, fashion_conditional, without --epochs and --out
    "--dataset", "fashion_mnist", "--arch", "conv", "--conv-width", "32", "--latent-dim", "16",
    "--hidden", "256", "--conditional", "--encoder-conditional", "--consistency-weight", "4",
    "--realism-weight", "3", "--realism-on-reconstructions", "--style-prior-components", "0",
    "--beta", "1", "--recon-loss", "bce", "--batch-size", "128", "--lr", "1e-3", "--seed", "0"]


def run(width: int, epochs: int, images: int) -> dict:
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "vae_core", "train", *FASHION_RECIPE,
               "--critic-width", str(width), "--epochs", str(epochs),
               "--max-train-images", str(images), "--no-eval", "--out", str(Path(out) / "c")]
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    times = [float(s) for s in EPOCH_LINE.findall(proc.stdout)]
    return {"epoch_seconds": times, "steady": statistics.median(times[1:] or times)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--widths", default="16,48,64")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--images", type=int, default=15360)
    args = parser.parse_args()
    offline_keras_home()
    widths = [int(w) for w in args.widths.split(",")]
    runs = {w: [] for w in widths}
    for i in range(args.rounds):
        for w in widths:
            r = run(w, args.epochs, args.images)
            runs[w].append(r)
            print(f"round {i + 1} critic width {w}: {r}", flush=True)
    steady = {w: statistics.median(r["steady"] for r in v) for w, v in runs.items()}
    base = steady[widths[0]]
    write_result("critic_width", {
        "command": " ".join(["python bench/critic_width.py", *sys.argv[1:]]),
        "machine": machine(), "epochs": args.epochs, "train_images": args.images,
        "runs": {str(w): v for w, v in runs.items()},
        "epoch_seconds": {str(w): spread(r["steady"] for r in v) for w, v in runs.items()},
        f"epoch_time_ratio_to_width_{widths[0]}": {
            str(w): round(s / base, 3) for w, s in steady.items()},
    })


if __name__ == "__main__":
    main()
