"""Tuning helper (not part of the rebuild): train conditional configs in-process and score them.

    python checkpoints/tune_conditional.py mnist '{"latent_dim": 2, "beta": 1, "epochs": 20}' ...

Prints one JSON line per config: judge agreement over 100 style seeds x 10 classes, the judge's
mean confidence, and how much class information leaked into the style latent (nearest-class-
centroid accuracy of the encoded test means: 0.1 = none, 1.0 = the style alone names the class).
Uses the shipped judge (checkpoints/judges/<dataset>.keras). TUNING.md records what it found.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from vae_core import VAEConfig, load_dataset, train  # noqa: E402
from vae_core.quality import conditional_agreement, load_judge  # noqa: E402


def style_class_leak(model, dataset) -> float:
    means, _ = model.encode(dataset.x_test)
    centroids = np.stack([means[dataset.y_test == c].mean(0) for c in range(10)])
    nearest = ((means[:, None] - centroids[None]) ** 2).sum(-1).argmin(1)
    return float((nearest == dataset.y_test).mean())


def main(name: str, *specs: str) -> None:
    dataset, judge = load_dataset(name), load_judge(name)
    for spec in specs:
        changes = {"arch": "mlp", "hidden": [400], **json.loads(spec)}
        changes["hidden"] = tuple(changes["hidden"])
        result = train(VAEConfig(dataset=name, conditional=True, **changes), dataset,
                       validate=False)
        q = conditional_agreement(result.model, judge)
        print(json.dumps({"config": spec, "seconds": round(result.seconds),
                          "agreement": q["agreement"], "confidence": round(q["mean_confidence"], 3),
                          "per_class": q["per_class_agreement"],
                          "style_class_leak": round(style_class_leak(result.model, dataset), 3)}),
              flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
