"""Tuning helper (not part of the rebuild): train conditional configs in-process and score them.

    python docs/tuning/tune_conditional.py mnist '{"latent_dim": 16, "encoder_conditional": true,
        "consistency_weight": 1, "style_prior_components": 50, "epochs": 15}' ...

Each JSON object holds VAEConfig fields (defaults: conditional MLP, hidden 400) plus an optional
"head": N to train on the first N training images only (quick screening). Prints one JSON line
per config: judge agreement (overall and worst class) and the Frechet distance to the test set in
judge-feature space as a multiple of the real-vs-real floor, for each sampler the model offers
(the fitted mixture and N(0, I)), the reconstruction FD ratio, and how much class information
leaked into the style latent (nearest-class-centroid accuracy of the encoded test means: 0.1 =
none, 1.0 = the style alone names the class). Uses the shipped judges
(checkpoints/judges/<dataset>.keras). docs/tuning.md records what it found.
"""

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from vae_core import VAEConfig, load_dataset, samplers, train  # noqa: E402
from vae_core.quality import (conditional_agreement, fd_report, generated_samples,  # noqa: E402
                              load_judge)


class EpochLine(keras.callbacks.Callback):
    """One line per epoch on stderr, so a long screening run shows where it is."""

    def on_epoch_end(self, epoch, logs=None):
        print(f"epoch {epoch + 1} {time.strftime('%H:%M:%S')} "
              + " ".join(f"{k} {v:.3f}" for k, v in sorted((logs or {}).items())),
              file=sys.stderr, flush=True)


def style_class_leak(model, dataset) -> float:
    means, _ = model.encode(dataset.x_test)
    centroids = np.stack([means[dataset.y_test == c].mean(0) for c in range(10)])
    nearest = ((means[:, None] - centroids[None]) ** 2).sum(-1).argmin(1)
    return float((nearest == dataset.y_test).mean())


def score(model, dataset, judge, samples_per_fd=10_000) -> dict:
    out = {}
    for sampler in samplers.available(model):
        grid = generated_samples(model, sampler, samples_per_fd)
        q = conditional_agreement(model, judge, range(len(grid)), grid=grid)
        fd = fd_report(model, judge, dataset, samples_per_fd, grid, sampler)
        out[sampler] = {"agreement": round(q["agreement"], 4),
                        "worst_class": round(min(q["per_class_agreement"]), 3),
                        "per_class": q["per_class_agreement"],
                        "fd_ratio": round(fd["samples_ratio"], 2)}
        out["recon_fd_ratio"] = round(fd["reconstructions_ratio"], 2)
        out["fd_floor"] = round(fd["floor"], 3)
    return out


def main(name: str, *specs: str) -> None:
    dataset, judge = load_dataset(name), load_judge(name)
    for spec in specs:
        changes = {"arch": "mlp", "hidden": [400], **json.loads(spec)}
        head = changes.pop("head", None)
        changes["hidden"] = tuple(changes["hidden"])
        train_set = dataset.head(head) if head else dataset
        result = train(VAEConfig(dataset=name, conditional=True, **changes), train_set,
                       validate=False, callbacks=[EpochLine()])
        print(json.dumps({"config": spec, "seconds": round(result.seconds),
                          **score(result.model, dataset, judge),
                          "style_class_leak": round(style_class_leak(result.model, dataset), 3)}),
              flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
