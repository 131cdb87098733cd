"""bf16 vs float32: seconds per epoch and final test ELBO, MLP and conv, same seed and epochs.

    python bench/bf16.py [--pairs 2] [--mlp-epochs 3] [--conv-epochs 2] [--conv-images N] [--tag T]

Runs `python -m vae_core train ... --bf16` and `--no-bf16` alternately (fresh processes, seed 0),
reads the epoch lines and the evaluation JSON line. Per run: median of epochs 2..N (or the only
epoch). The option would be on by default only where bf16 is >= 1.3x faster per epoch with the
ELBO within 0.5 nats. Writes bench/results/bf16.json.
"""

from __future__ import annotations

import argparse
import json
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
EPOCH_LINE = re.compile(r"^epoch \d+/\d+ \(([\d.]+) s\)", re.M)


def run(arch: str, bf16: bool, epochs: int, images: int | None) -> dict:
    shape = ["--latent-dim", "20", "--hidden", "512"] if arch == "mlp" else [
        "--latent-dim", "2", "--hidden", "16"]
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "vae_core", "train", "--arch", arch, *shape, "--seed", "0",
               "--batch-size", "128", "--epochs", str(epochs), "--out", str(Path(out) / "c"),
               "--bf16" if bf16 else "--no-bf16"]
        if images:
            cmd += ["--max-train-images", str(images)]
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    times = [float(s) for s in EPOCH_LINE.findall(proc.stdout)]
    evaluation = json.loads(next(l for l in proc.stdout.splitlines() if l.startswith("{")))
    return {"epoch_seconds": times, "elbo": evaluation["elbo"],
            "steady": statistics.median(times[1:] or times)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--mlp-epochs", type=int, default=3)
    parser.add_argument("--conv-epochs", type=int, default=2)
    parser.add_argument("--conv-images", type=int, default=None,
                        help="train the conv model on the first N images only (time)")
    parser.add_argument("--archs", default="mlp,conv")
    add_tag_argument(parser)
    args = parser.parse_args()
    offline_keras_home()
    result = {"command": " ".join(["python bench/bf16.py", *sys.argv[1:]]), "machine": machine()}
    for arch in args.archs.split(","):
        epochs = args.mlp_epochs if arch == "mlp" else args.conv_epochs
        images = None if arch == "mlp" else args.conv_images
        runs = {"float32": [], "bf16": []}
        for i in range(args.pairs):
            for name in ("float32", "bf16"):
                r = run(arch, name == "bf16", epochs, images)
                runs[name].append(r)
                print(f"{arch} pair {i + 1} {name}: {r}", flush=True)
        steady = {n: [r["steady"] for r in v] for n, v in runs.items()}
        elbo = {n: [r["elbo"] for r in v] for n, v in runs.items()}
        speedup = statistics.median(steady["float32"]) / statistics.median(steady["bf16"])
        elbo_gap = statistics.median(elbo["bf16"]) - statistics.median(elbo["float32"])
        result[arch] = {
            "epochs": epochs, "train_images": images or 60000, "runs": runs,
            "float32_epoch_seconds": spread(steady["float32"]),
            "bf16_epoch_seconds": spread(steady["bf16"]),
            "speedup_bf16": round(speedup, 3), "elbo_bf16_minus_float32": round(elbo_gap, 3),
            "pays": bool(speedup >= 1.3 and abs(elbo_gap) <= 0.5),
        }
    write_result("bf16", result, args.tag)


if __name__ == "__main__":
    main()
