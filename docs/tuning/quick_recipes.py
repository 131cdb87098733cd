"""Train one conditional config, then score several kept-style fits of the same weights.

    python docs/tuning/quick_recipes.py mnist '{"latent_dim": 32, "epochs": 4, ...}' \
        [--fits '[[300, 0.15], [1000, 0.5]]'] [--results quick.jsonl]

The rows of docs/tuning.md's "Issue 30: the quick recipes" came from this (the first round's
from an earlier one-fit version at the tag research-pass-15). The config JSON holds VAEConfig
fields over the conditional defaults; each fit is [class_style_anchors, class_style_bandwidth]
(anchors 0: one smooth range per class). Prints one JSON line for the training run (seconds,
reconstruction FD / floor) and one per fit (agreement, worst class, sample FD / floor), scored
as `python -m vae_core quality` does (1,000 style seeds x 10 classes); --results appends them.
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from vae_core import VAEConfig, load_dataset, samplers, train  # noqa: E402
from vae_core.models import VAE  # noqa: E402
from vae_core.quality import conditional_agreement, fd_to_test_set, load_judge  # noqa: E402
from vae_core.training import reconstruct  # noqa: E402


def score(model, data, judge) -> dict:
    grid = model.generate_grid(range(1000), range(10))
    agreement = conditional_agreement(model, judge, range(1000), grid=grid)
    fd, floor = fd_to_test_set(judge, data, grid)
    return {"agreement": round(agreement["agreement"], 4),
            "worst": min(agreement["per_class_agreement"]), "fd_ratio": round(fd / floor, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=["mnist", "fashion_mnist"])
    parser.add_argument("config", type=json.loads, help="VAEConfig fields as JSON")
    parser.add_argument("--fits", type=json.loads, default=[[0, 0.5], [300, 0.5], [300, 0.15]])
    parser.add_argument("--results", type=Path, help="append the JSON lines to this file")
    args = parser.parse_args()
    data, judge = load_dataset(args.dataset), load_judge(args.dataset)
    config = VAEConfig(dataset=args.dataset, conditional=True, **args.config)
    started = time.perf_counter()
    model = train(config, data, validate=False, previews=False).model
    rfd, floor = fd_to_test_set(judge, data, reconstruct(model, data.x_test))
    rows = [{"dataset": args.dataset, "config": args.config,
             "train_s": round(time.perf_counter() - started, 1),
             "recon_fd_ratio": round(rfd / floor, 2)}]
    for anchors, bandwidth in args.fits:
        twin = VAE(config.replace(class_matched_styles=True, class_style_anchors=anchors,
                                  class_style_bandwidth=bandwidth))
        for name in ("encoder", "decoder", "classifier"):
            getattr(twin, name).set_weights(getattr(model, name).get_weights())
        samplers.fit(twin, data.x_train)
        rows.append({**rows[0], "anchors": anchors, "bandwidth": bandwidth,
                     **score(twin, data, judge)})
    for row in rows:
        print(json.dumps(row), flush=True)
    if args.results:
        with args.results.open("a") as f:
            f.writelines(json.dumps(row) + "\n" for row in rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
