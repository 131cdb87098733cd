"""Target 4: seconds per epoch of the conv model, vae_core CLI vs the same network in the
keras.io-style script (bench/reference_keras_io_vae.py --arch conv).

    python bench/conv_vs_keras.py [--pairs 3] [--epochs 3] [--engine-flags="--lr 2e-3"] [--tag T]

Alternates fresh processes (A B A B ...): A = `python -m vae_core train --arch conv
--latent-dim 2 --hidden 16 --no-eval` (its epochs include a pass over the 10,000 test images),
B = the reference with `--time-epochs`. The first epoch (tracing) is left out; each run gives
the median of its other epochs. Writes bench/results/conv_vs_keras.json.
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
from common import (add_tag_argument, machine, offline_keras_home, spread,  # noqa: E402
                    write_result)

ROOT = Path(__file__).resolve().parents[1]
EPOCH_LINE = re.compile(r"epoch \d+/\d+ \(([\d.]+) s\)")  # Keras's bar may precede it


def epoch_times(cmd) -> list[float]:
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"{cmd} failed:\n{proc.stderr[-3000:]}")
    return [float(s) for s in EPOCH_LINE.findall(proc.stdout)]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-images", type=int, default=None,
                        help="both sides train on the first N images (the engine still "
                             "validates on all 10,000 test images each epoch)")
    parser.add_argument("--engine-flags", default="",
                        help="extra CLI flags for the engine side (e.g. '--lr 2e-3')")
    add_tag_argument(parser)
    args = parser.parse_args()
    offline_keras_home()
    out = tempfile.mkdtemp(prefix="vae-bench-conv-")
    engine = [sys.executable, "-m", "vae_core", "train", "--arch", "conv", "--latent-dim", "2",
              "--hidden", "16", "--batch-size", "128", "--epochs", str(args.epochs), "--no-eval",
              "--out", str(Path(out) / "ckpt"), *args.engine_flags.split()]
    reference = [sys.executable, "bench/reference_keras_io_vae.py", "--arch", "conv",
                 "--epochs", str(args.epochs), "--time-epochs"]
    if args.train_images:
        engine += ["--max-train-images", str(args.train_images)]
        reference += ["--train-images", str(args.train_images)]
    runs = {"engine": [], "reference": []}
    for i in range(args.pairs):
        for side, cmd in (("engine", engine), ("reference", reference)):
            times = epoch_times(cmd)
            runs[side].append(times)
            print(f"pair {i + 1} {side}: {times}", flush=True)
    per_run = {s: [statistics.median(t[1:]) for t in r] for s, r in runs.items()}
    write_result("conv_vs_keras", {
        "what": "seconds per conv epoch (keras.io's conv VAE: conv 32/64 stride 2, dense 16, "
                "latent 2; batch 128; median of epochs 2..N per run), vae_core CLI vs reference",
        "train_images": args.train_images or 60000,
        "command": f"python bench/conv_vs_keras.py --pairs {args.pairs} --epochs {args.epochs}"
                   + (f" --train-images {args.train_images}" if args.train_images else "")
                   + (f" --engine-flags='{args.engine_flags}'" if args.engine_flags else ""),
        "machine": machine(), "epoch_seconds": runs,
        "engine": spread(per_run["engine"]), "reference": spread(per_run["reference"]),
        "ratio_per_pair": [round(a / b, 3) for a, b in zip(per_run["engine"],
                                                           per_run["reference"])],
        "ratio_of_medians": round(statistics.median(per_run["engine"])
                                  / statistics.median(per_run["reference"]), 3),
        "target": "<= 0.5",
    }, args.tag)


if __name__ == "__main__":
    main()
