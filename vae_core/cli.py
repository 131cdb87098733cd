"""Command line: `python -m vae_core train ...`, `evaluate DIR`, `judge ...` and `quality DIR`."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time

import keras

from .config import ARCHITECTURES, DATASETS, RECON_LOSSES, ConfigError, VAEConfig, parse_hidden

DEFAULTS = VAEConfig()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vae_core",
                                     description="Train and evaluate VAEs on MNIST/Fashion-MNIST.")
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model and write a checkpoint folder")
    t.add_argument("--dataset", choices=DATASETS, default=DEFAULTS.dataset)
    t.add_argument("--arch", choices=ARCHITECTURES, default=DEFAULTS.arch)
    t.add_argument("--latent-dim", type=int, default=DEFAULTS.latent_dim,
                   help="style latent size (conditional models add 10 class slots)")
    t.add_argument("--conditional", action=argparse.BooleanOptionalAction,
                   default=DEFAULTS.conditional, help="digit-conditioned model with a classifier")
    t.add_argument("--beta", type=float, default=DEFAULTS.beta, help="KL weight; 0 = KL off")
    t.add_argument("--kl-warmup-epochs", type=int, default=DEFAULTS.kl_warmup_epochs)
    t.add_argument("--recon-loss", choices=RECON_LOSSES, default=DEFAULTS.recon_loss)
    t.add_argument("--hidden", default=",".join(map(str, DEFAULTS.hidden)),
                   help="dense layer sizes, e.g. 512 or 512,256")
    t.add_argument("--lr", type=float, default=DEFAULTS.learning_rate, help="learning rate")
    t.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size)
    t.add_argument("--epochs", type=int, default=DEFAULTS.epochs)
    t.add_argument("--seed", type=int, default=DEFAULTS.seed)
    t.add_argument("--encoder-conditional", action=argparse.BooleanOptionalAction,
                   default=DEFAULTS.encoder_conditional,
                   help="conditional models: the encoder also sees the classifier's softmax")
    t.add_argument("--consistency-weight", type=float, default=DEFAULTS.consistency_weight,
                   help="conditional models: weight of the class-consistency loss (0 = off)")
    t.add_argument("--conv-width", type=int, default=DEFAULTS.conv_width,
                   help="conv models: channels of the first conv layer (the second has twice)")
    t.add_argument("--style-prior-components", type=int,
                   default=DEFAULTS.style_prior_components,
                   help="Gaussian-mixture components fitted to the encoded training styles after "
                        "training, to sample styles from (0 = N(0, I) only)")
    t.add_argument("--out", required=True, help="checkpoint folder to write")
    t.add_argument("--no-eval", action="store_true", help="skip the test-set evaluation")
    t.add_argument("--max-train-images", type=int, default=None,
                   help="train on only the first N training images (quick experiments)")

    e = sub.add_parser("evaluate", help="print a checkpoint's test-set evaluation as JSON")
    e.add_argument("checkpoint")

    j = sub.add_parser("judge", help="train the independent classifier that scores samples")
    j.add_argument("--dataset", choices=DATASETS, default=DEFAULTS.dataset)
    j.add_argument("--epochs", type=int, default=6)
    j.add_argument("--seed", type=int, default=0)
    j.add_argument("--out", required=True, help=".keras file to write")

    q = sub.add_parser("quality", help="score a checkpoint with the judge; adds 'quality' to "
                                       "its card.json and prints it as JSON")
    q.add_argument("checkpoint")
    q.add_argument("--judge", default=None,
                   help="judge .keras file (default: checkpoints/judges/<dataset>.keras)")
    q.add_argument("--no-write", action="store_true", help="print only; leave card.json alone")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        commands = {"train": lambda: _train(args, argv), "evaluate": lambda: _evaluate(args),
                    "judge": lambda: _judge(args, argv), "quality": lambda: _quality(args)}
        return commands[args.command]()
    except (ConfigError, ValueError, RuntimeError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _train(args, argv) -> int:
    from .checkpoints import save_checkpoint
    from .data import load_dataset
    from .evaluate import evaluate
    from .images import tile, to_png
    from .training import train

    config = VAEConfig(
        dataset=args.dataset, arch=args.arch, latent_dim=args.latent_dim,
        conditional=args.conditional, beta=args.beta, kl_warmup_epochs=args.kl_warmup_epochs,
        recon_loss=args.recon_loss, hidden=parse_hidden(args.hidden),
        learning_rate=args.lr, batch_size=args.batch_size, epochs=args.epochs, seed=args.seed,
        encoder_conditional=args.encoder_conditional, consistency_weight=args.consistency_weight,
        conv_width=args.conv_width, style_prior_components=args.style_prior_components)
    dataset = load_dataset(config.dataset)
    if args.max_train_images is not None:
        if args.max_train_images < 1:
            raise ConfigError("--max-train-images must be at least 1.")
        dataset = dataset.head(args.max_train_images)
    print(f"Training {config.arch} VAE on {config.dataset} "
          f"({len(dataset.x_train)} images): {config.to_dict()}", flush=True)
    result = train(config, dataset, callbacks=[EpochSummary(config.epochs)],
                   verbose=1 if sys.stdout.isatty() else 0)
    print(result.reason, flush=True)
    card = {
        "command": "python -m vae_core " + shlex.join(sys.argv[1:] if argv is None else argv),
        "training_seconds": round(result.seconds, 1),
        "stopped_early": result.status != "done",
        "keras_version": keras.__version__,
    }
    if not args.no_eval:
        card["evaluation"] = evaluate(result.model, dataset)
        print(json.dumps({k: v for k, v in card["evaluation"].items() if k != "kl_per_dim"}),
              flush=True)
    samples = result.model.generate_grid(range(4), range(10))
    path = save_checkpoint(result.model, args.out, result.history, card,
                           extra_files={"samples.png": to_png(tile(samples), scale=2)})
    print(f"Checkpoint written to {path}")
    return 0


def _evaluate(args) -> int:
    from .checkpoints import load_checkpoint
    from .evaluate import evaluate

    print(json.dumps(evaluate(load_checkpoint(args.checkpoint)), indent=2))
    return 0


def _judge(args, argv) -> int:
    from pathlib import Path

    from .data import load_dataset
    from .quality import train_judge

    if args.epochs < 1:
        raise ValueError(f"--epochs must be at least 1, not {args.epochs}.")
    out = Path(args.out)
    if out.suffix != ".keras":
        raise ValueError(f"--out must end in .keras, not {out.name!r}.")
    judge, accuracy, seconds = train_judge(load_dataset(args.dataset), epochs=args.epochs,
                                           seed=args.seed, verbose=1 if sys.stdout.isatty() else 0)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp.keras")
    judge.save(tmp)
    tmp.replace(out)
    info = {"dataset": args.dataset, "test_accuracy": accuracy,
            "training_seconds": round(seconds, 1), "params": int(judge.count_params()),
            "command": "python -m vae_core " + shlex.join(sys.argv[1:] if argv is None else argv)}
    out.with_suffix(".json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info, indent=2))
    return 0


def _quality(args) -> int:
    from .checkpoints import load_checkpoint
    from .quality import quality_report, update_card, write_latent_png

    model = load_checkpoint(args.checkpoint)
    report = quality_report(model, judge_file=args.judge)
    if not args.no_write:
        if model.config.latent_dim == 2:
            write_latent_png(model, args.checkpoint)
        update_card(args.checkpoint, "quality", report)
    print(json.dumps(report, indent=2))
    return 0


class EpochSummary(keras.callbacks.Callback):
    """One readable line per epoch, whatever Keras's own progress bar does."""

    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.time()

    def on_epoch_end(self, epoch, logs=None):
        parts = [f"{k} {v:.3f}" if "accuracy" in k else f"{k} {v:.2f}"
                 for k, v in sorted((logs or {}).items())]
        print(f"epoch {epoch + 1}/{self.epochs} ({time.time() - self._start:.1f} s): "
              + ", ".join(parts), flush=True)
