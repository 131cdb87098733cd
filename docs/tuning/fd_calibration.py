"""How far small, known degradations of real images move the judge-feature FD: a ruler for
reading the quality bars (docs/tuning.md, seventh pass), not a test.

    python docs/tuning/fd_calibration.py fashion_mnist [--n 10000] [--json out.json]

Scores 10,000 real training images, unaltered and blurred / dimmed / noised, against the test set
as multiples of the real-vs-real floor, with the shipped judge (`vae_core.quality`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from vae_core import quality  # noqa: E402
from vae_core.data import load_dataset  # noqa: E402


def gaussian_blur(images: np.ndarray, sigma: float) -> np.ndarray:
    """A separable Gaussian blur of (N, 28, 28) images, zero beyond the border (numpy only)."""
    radius = int(np.ceil(3 * sigma))
    t = np.arange(-radius, radius + 1)
    kernel = np.exp(-t ** 2 / (2 * sigma ** 2))
    kernel /= kernel.sum()
    blurred = np.apply_along_axis(np.convolve, 1, images, kernel, mode="same")
    return np.apply_along_axis(np.convolve, 2, blurred, kernel, mode="same")


ALTERATIONS = {
    "unaltered": lambda x, rng: x,
    "blur 0.5 px": lambda x, rng: gaussian_blur(x, 0.5),
    "blur 0.7 px": lambda x, rng: gaussian_blur(x, 0.7),
    "blur 1.0 px": lambda x, rng: gaussian_blur(x, 1.0),
    "contrast x 0.9": lambda x, rng: 0.9 * x,
    "contrast x 0.8": lambda x, rng: 0.8 * x,
    "white noise 0.02": lambda x, rng: np.clip(x + 0.02 * rng.standard_normal(x.shape), 0, 1),
    "white noise 0.05": lambda x, rng: np.clip(x + 0.05 * rng.standard_normal(x.shape), 0, 1),
}


def calibrate(dataset: str, n: int = quality.FD_SAMPLES) -> dict[str, float]:
    data = load_dataset(dataset)
    judge = quality.load_judge(dataset)
    real = data.x_train[:n]
    rng = np.random.default_rng(0)
    ratios = {}
    for name, alter in ALTERATIONS.items():
        fd, floor = quality.fd_to_test_set(judge, data, alter(real, rng).astype(np.float32), n)
        ratios[name] = fd / floor
    return ratios


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", choices=("mnist", "fashion_mnist"))
    parser.add_argument("--n", type=int, default=quality.FD_SAMPLES)
    parser.add_argument("--json", help="also write the ratios here")
    args = parser.parse_args(argv)
    ratios = calibrate(args.dataset, args.n)
    for name, ratio in ratios.items():
        print(f"{name:>18}: {ratio:7.1f}x the floor")
    if args.json:
        Path(args.json).write_text(json.dumps({"dataset": args.dataset, "ratios": ratios},
                                              indent=2))


if __name__ == "__main__":
    main()
