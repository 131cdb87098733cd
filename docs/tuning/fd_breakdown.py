"""Where a conditional checkpoint's sample FD comes from: its mean and spread terms, and per class.

    python docs/tuning/fd_breakdown.py checkpoints/fashion_conditional [SAMPLER]

The samples are the quality report's (1,000 style seeds x 10 classes). The FD to the test set
splits into |mean difference|^2 and the covariance part, and the total feature variance of the
samples is set beside the test set's (too little means too little variety). Per class, the
class's 1,000 samples are scored against that class's test images, over the same class's
real-vs-real floor (its first 1,000 training images), so the classes that cost most stand out.

Two what-ifs on the judge features (no images are changed) say what kind of error is left:
each class's samples swapped for its 1,000 real training images (what perfecting that one class
would gain), and every class's samples shifted to its real images' mean feature (what is left
once the per-class offsets are gone: within-class spread and shape).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from vae_core import quality  # noqa: E402
from vae_core.checkpoints import load_checkpoint  # noqa: E402
from vae_core.config import NUM_CLASSES  # noqa: E402
from vae_core.data import load_dataset  # noqa: E402


def main():
    model = load_checkpoint(sys.argv[1])
    sampler = sys.argv[2] if len(sys.argv) > 2 else None
    data = load_dataset(model.config.dataset)
    judge = quality.load_judge(model.config.dataset)
    samples = quality.generated_samples(model, sampler)  # (seeds, classes, 28, 28)
    feats = quality.judge_features(judge, samples)
    feats = feats.reshape(-1, NUM_CLASSES, feats.shape[-1])
    test = quality.judge_features(judge, data.x_test)
    (m2, c2), floor = quality.reference_and_floor(judge, data)
    m1, c1 = quality.feature_stats(feats.reshape(-1, feats.shape[-1]))
    fd = quality.frechet_distance((m1, c1), (m2, c2))
    mean_term = float(((m1 - m2) ** 2).sum())
    print(f"FD {fd:.3f} = {fd / floor:.1f}x the floor ({floor:.4f}); mean term {mean_term:.3f} "
          f"({mean_term / fd:.0%}); total variance {np.trace(c1):.1f} "
          f"(test set {np.trace(c2):.1f})")
    real = []  # per class: the judge features of its first 1,000 training images
    for c in range(NUM_CLASSES):
        mine, theirs = feats[:, c], test[data.y_test == c]
        first_1000 = np.flatnonzero(data.y_train == c)[:1000]
        real.append(quality.judge_features(judge, data.x_train[first_1000]))
        ref = quality.feature_stats(theirs)
        class_fd = quality.frechet_distance(quality.feature_stats(mine), ref)
        class_floor = quality.frechet_distance(quality.feature_stats(real[c]), ref)
        print(f"class {c}: FD {class_fd:.3f} = {class_fd / class_floor:.0f}x its floor "
              f"({class_floor:.3f}); mean term {((mine.mean(0) - theirs.mean(0)) ** 2).sum():.3f}; "
              f"variance {np.trace(np.cov(mine, rowvar=False)):.1f} "
              f"(test {np.trace(np.cov(theirs, rowvar=False)):.1f})")

    def ratio(features):
        stats = quality.feature_stats(features.reshape(-1, features.shape[-1]))
        return quality.frechet_distance(stats, (m2, c2)) / floor

    swapped = []
    for c in range(NUM_CLASSES):
        what_if = feats.copy()
        what_if[:, c] = real[c][:len(feats)]
        swapped.append(f"{c}: {ratio(what_if):.1f}x")
    print("what if one class's samples were its real images:", ", ".join(swapped))
    shifted = feats + np.stack([r.mean(0) for r in real]) - feats.mean(0)
    print(f"what if every class's samples had its real images' mean feature: "
          f"{ratio(shifted):.1f}x")

if __name__ == "__main__":
    main()
