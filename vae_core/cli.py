"""Command line: `python -m vae_core train ...`, `evaluate DIR`, `judge ...` and `quality DIR`."""

from __future__ import annotations

import argparse
import json
import math
import shlex
import signal
import sys
import threading
import time
from pathlib import Path

import keras

from .config import (ARCHITECTURES, DATASETS, DECODED_STYLES, LR_SCHEDULES, RECON_LOSSES,
                     ConfigError, VAEConfig, parse_hidden)
from .hardware import cpu_description

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
    t.add_argument("--lr-schedule", choices=LR_SCHEDULES, default=DEFAULTS.lr_schedule,
                   help="constant, or cosine: from --lr down to 0 over the run")
    t.add_argument("--adam-beta1", type=float, default=DEFAULTS.adam_beta1,
                   help="Adam's first-moment decay (0.9; adversarial recipes often use 0.5)")
    t.add_argument("--ema-momentum", type=float, default=DEFAULTS.ema_momentum,
                   help="finish on a moving average of the weights with this momentum, e.g. "
                        "0.998 (0 = off)")
    t.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size)
    t.add_argument("--epochs", type=int, default=DEFAULTS.epochs)
    t.add_argument("--seed", type=int, default=DEFAULTS.seed)
    t.add_argument("--encoder-conditional", action=argparse.BooleanOptionalAction,
                   default=DEFAULTS.encoder_conditional,
                   help="conditional models: the encoder also sees the classifier's softmax")
    t.add_argument("--consistency-weight", type=float, default=DEFAULTS.consistency_weight,
                   help="conditional models: weight of the class-consistency loss (0 = off)")
    t.add_argument("--style-adversary-weight", type=float,
                   default=DEFAULTS.style_adversary_weight,
                   help="conditional models: weight of the adversary that keeps the class out of "
                        "the style latent (0 = off)")
    t.add_argument("--realism-weight", type=float, default=DEFAULTS.realism_weight,
                   help="weight of the realism term: an image critic the decoder learns to fool, "
                        "for sharp strokes (0 = off)")
    t.add_argument("--decoder-detail-convs", type=int, default=DEFAULTS.decoder_detail_convs,
                   help="conv models: extra 3x3 convolutions at full resolution before the "
                        "decoder's last layer (0-4)")
    t.add_argument("--critic-width", type=int, default=DEFAULTS.critic_width,
                   help="channels of the realism critic's first convolution (the second has "
                        "twice as many)")
    t.add_argument("--critic-depth", type=int, default=DEFAULTS.critic_depth,
                   help="stride-2 convolutions in the realism critic, each twice as wide as the "
                        "one before (1-4)")
    t.add_argument("--critic-gradient-penalty", type=float,
                   default=DEFAULTS.critic_gradient_penalty,
                   help="gamma of the R1 penalty on the realism critic's gradient at real "
                        "images (0 = off)")
    t.add_argument("--realism-on-reconstructions", action=argparse.BooleanOptionalAction,
                   default=DEFAULTS.realism_on_reconstructions,
                   help="the image critic also judges the batch's reconstructions (sharper "
                        "Fashion-MNIST samples; see checkpoints/TUNING.md)")
    t.add_argument("--perceptual-weight", type=float, default=DEFAULTS.perceptual_weight,
                   help="conditional models: weight of the feature-matching term (the model's "
                        "own classifier compares each reconstruction with its input; 0 = off)")
    t.add_argument("--moment-matching-weight", type=float,
                   default=DEFAULTS.moment_matching_weight,
                   help="conditional models: weight of the feature-statistics term (decoded "
                        "samples should give the model's own classifier the activation means "
                        "and spreads of real images; 0 = off)")
    t.add_argument("--decoded-styles", choices=DECODED_STYLES, default=DEFAULTS.decoded_styles,
                   help="styles the consistency, realism and feature terms decode with random "
                        "classes: the batch's encoded styles, shuffled, or N(0, I) draws")
    t.add_argument("--class-feature-matching-weight", type=float,
                   default=DEFAULTS.class_feature_matching_weight,
                   help="conditional models: weight of the per-class feature-mean term (decoded "
                        "samples of each class should give the model's own classifier the mean "
                        "activation real images of that class give it; 0 = off)")
    t.add_argument("--sample-temperature", type=float, default=DEFAULTS.sample_temperature,
                   help="default spread of sampled styles (1 = as fitted; 0.7 trades a little "
                        "variety for samples that obey the class more often)")
    t.add_argument("--conv-width", type=int, default=DEFAULTS.conv_width,
                   help="conv models: channels of the first conv layer (the second has twice)")
    t.add_argument("--style-prior-components", type=int,
                   default=DEFAULTS.style_prior_components,
                   help="Gaussian-mixture components fitted to the encoded training styles after "
                        "training, to sample styles from (0 = N(0, I) only)")
    t.add_argument("--class-matched-styles", action=argparse.BooleanOptionalAction,
                   default=DEFAULTS.class_matched_styles,
                   help="conditional models: after training, fit one style Gaussian per class and "
                        "sample from them (a seed is one noise written into each digit's spread)")
    t.add_argument("--class-style-anchors", type=int, default=DEFAULTS.class_style_anchors,
                   help="with --class-matched-styles: encoded training styles kept per class, "
                        "sampled as a kernel density around them (0 = one Gaussian per class)")
    t.add_argument("--class-style-bandwidth", type=float,
                   default=DEFAULTS.class_style_bandwidth,
                   help="the kernel's width as a fraction of each class's spread")
    t.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=DEFAULTS.bf16,
                   help="mixed precision: bfloat16 maths, float32 weights and losses")
    t.add_argument("--out", default=None,
                   help="checkpoint folder to write (rewritten after every epoch)")
    t.add_argument("--resume", default=None, metavar="DIR",
                   help="continue the interrupted run whose checkpoint folder is DIR (its "
                        "settings are used; other training flags are ignored)")
    t.add_argument("--no-eval", action="store_true", help="skip the test-set evaluation")
    t.add_argument("--max-train-images", type=int, default=None,
                   help="train on only the first N training images (quick experiments)")

    e = sub.add_parser("evaluate", help="print a checkpoint's test-set evaluation as JSON")
    e.add_argument("checkpoint", help="checkpoint folder, or a checkpoint zip from the app")

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
    i = sub.add_parser("int8", help="rewrite a trained checkpoint with int8 Dense weights (a "
                                    "quarter of the size, inference only) and re-evaluate it")
    i.add_argument("checkpoint")
    return parser


class Interrupted(Exception):
    """A second Ctrl-C while the first one is being handled."""


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from .checkpoints import CheckpointError

    try:
        commands = {"train": lambda: _train(args, argv), "evaluate": lambda: _evaluate(args),
                    "judge": lambda: _judge(args, argv), "quality": lambda: _quality(args),
                    "int8": lambda: _int8(args)}
        return commands[args.command]()
    except (ConfigError, CheckpointError, ValueError, RuntimeError, OSError) as e:
        print(f"error: {_one_line(e)}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, Interrupted):
        print("error: interrupted.", file=sys.stderr)
        return 130


def _one_line(e: BaseException) -> str:
    text = str(e) if not isinstance(e, OSError) or not e.filename else (
        f"{e.filename}: {e.strerror or e}")
    return " ".join(text.split()) or type(e).__name__


class SignalStop:
    """SIGINT/SIGTERM ask training to stop after the current batch (no traceback, no lost epoch).

    A second SIGINT while stopping raises `Interrupted` (the per-epoch checkpoint on disk is
    complete either way: it is replaced atomically).
    """

    def __init__(self):
        self.event = threading.Event()
        self.signum = None
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                if signal.getsignal(signum) is signal.SIG_IGN:
                    continue  # e.g. started with nohup or `&` from a script: keep ignoring it
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        return False

    def _handle(self, signum, frame):
        if self.event.is_set() and signum == signal.SIGINT:
            raise Interrupted()
        self.signum = signum
        self.event.set()
        print(f"\n{signal.Signals(signum).name}: stopping after the current batch…",
              file=sys.stderr, flush=True)


class EpochCheckpoint(keras.callbacks.Callback):
    """After every complete epoch with finite loss and weights, rewrite the checkpoint folder.

    The folder is replaced atomically (see `save_checkpoint`), so a kill at any moment leaves the
    last complete epoch loadable. It carries `training_state.npz` (optimizer, RNG, settings) so
    `train --resume` can continue exactly; the finished run's final save drops that file.
    """

    def __init__(self, out, steps: int, history: dict, card: dict, settings: dict):
        super().__init__()
        self.out, self.steps, self.card, self.settings = out, steps, card, settings
        self.history = {k: list(v) for k, v in history.items()}
        self.saved_epochs = len(self.history.get("loss", []))
        self._batches = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._batches = 0

    def on_train_batch_end(self, batch, logs=None):
        self._batches += 1

    def on_epoch_end(self, epoch, logs=None):
        from .checkpoints import STATE_FILE, save_checkpoint, save_training_state
        from .training import all_finite

        logs = logs or {}
        if (self._batches < self.steps or not math.isfinite(float(logs.get("loss", math.nan)))
                or not all_finite(self.model)):
            return  # a partial (stopped) or diverged epoch is never saved
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))
        state = save_training_state(self.model, epoch + 1, self.settings)
        save_checkpoint(self.model, self.out, self.history,
                        {**self.card, "in_progress": True}, extra_files={STATE_FILE: state})
        self.saved_epochs = epoch + 1


def _train(args, argv) -> int:
    from .checkpoints import load_resume_state, save_checkpoint
    from .data import load_dataset
    from .evaluate import evaluate
    from .images import tile, to_png
    from .training import train

    command = "python -m vae_core " + shlex.join(sys.argv[1:] if argv is None else argv)
    resume = None
    if args.resume is not None:
        if args.out is not None and Path(args.out).resolve() != Path(args.resume).resolve():
            raise ConfigError("--resume continues in its own folder: leave out --out.")
        _, resume, settings = load_resume_state(args.resume)
        config = VAEConfig.from_dict(settings["config"])
        out = Path(args.resume)
        max_images, no_eval = settings.get("max_train_images"), settings.get("no_eval", False)
        command = settings.get("command", command)
    else:
        if args.out is None:
            raise ConfigError("--out is required: the checkpoint folder to write "
                              "(or --resume DIR to continue a run).")
        config = VAEConfig(
            dataset=args.dataset, arch=args.arch, latent_dim=args.latent_dim,
            conditional=args.conditional, beta=args.beta, kl_warmup_epochs=args.kl_warmup_epochs,
            recon_loss=args.recon_loss, hidden=parse_hidden(args.hidden),
            learning_rate=args.lr, lr_schedule=args.lr_schedule, adam_beta1=args.adam_beta1,
            ema_momentum=args.ema_momentum, batch_size=args.batch_size, epochs=args.epochs,
            seed=args.seed,
            encoder_conditional=args.encoder_conditional,
            consistency_weight=args.consistency_weight, decoded_styles=args.decoded_styles,
            conv_width=args.conv_width,
            decoder_detail_convs=args.decoder_detail_convs,
            style_adversary_weight=args.style_adversary_weight,
            realism_weight=args.realism_weight, critic_width=args.critic_width,
            critic_depth=args.critic_depth, critic_gradient_penalty=args.critic_gradient_penalty,
            realism_on_reconstructions=args.realism_on_reconstructions,
            perceptual_weight=args.perceptual_weight,
            moment_matching_weight=args.moment_matching_weight,
            class_feature_matching_weight=args.class_feature_matching_weight,
            sample_temperature=args.sample_temperature,
            style_prior_components=args.style_prior_components,
            class_matched_styles=args.class_matched_styles,
            class_style_anchors=args.class_style_anchors,
            class_style_bandwidth=args.class_style_bandwidth, bf16=args.bf16)
        out = Path(args.out)
        max_images, no_eval = args.max_train_images, args.no_eval
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file: give a folder for the checkpoint.")
    if max_images is not None and max_images < 1:
        raise ConfigError("--max-train-images must be at least 1.")
    dataset = load_dataset(config.dataset)
    if max_images is not None:
        dataset = dataset.head(max_images)
    if config.batch_size > len(dataset.x_train):
        raise ConfigError(f"batch_size {config.batch_size} is larger than the "
                          f"{len(dataset.x_train)} training images: choose at most "
                          f"{len(dataset.x_train)}.")
    out.parent.mkdir(parents=True, exist_ok=True)
    settings = {"config": config.to_dict(), "max_train_images": max_images, "no_eval": no_eval,
                "command": command}
    card = {"command": command, "keras_version": keras.__version__}
    done_before = resume.epochs_done if resume else 0
    if resume:
        print(f"Resuming {out} after epoch {done_before} of {config.epochs}.", flush=True)
    print(f"Training {config.arch} VAE on {config.dataset} "
          f"({len(dataset.x_train)} images): {config.to_dict()}", flush=True)
    steps = math.ceil(len(dataset.x_train) / config.batch_size)
    saver = EpochCheckpoint(out, steps, resume.history if resume else {}, card, settings)
    def stopped(how: str, signum: int) -> int:
        if saver.saved_epochs:
            print(f"Stopped by {how}. The checkpoint {out} holds the {saver.saved_epochs} "
                  f"finished epoch(s) of {config.epochs}; the unfinished epoch is not kept. "
                  f"Resume with: python -m vae_core train --resume {shlex.quote(str(out))}",
                  file=sys.stderr, flush=True)
        else:
            print(f"Stopped by {how} before the first epoch finished: no checkpoint was "
                  "written; run the command again to start over.", file=sys.stderr, flush=True)
        return 128 + signum

    try:
        with SignalStop() as stop:
            result = train(config, dataset, stop_event=stop.event, resume=resume,
                           callbacks=[EpochSummary(config.epochs, steps), saver],
                           verbose=1 if sys.stdout.isatty() else 0, previews=False)
    except Interrupted:  # a second Ctrl-C: the finished epochs on disk are still resumable
        return stopped("a second SIGINT", signal.SIGINT)
    if stop.signum is not None and result.status != "done":
        return stopped(signal.Signals(stop.signum).name, stop.signum)
    if result.status == "diverged":
        where = (f"The checkpoint {out} keeps epoch {saver.saved_epochs}, the last good one "
                 f"(resume with a smaller --lr is not possible: start a new run)."
                 if saver.saved_epochs else "No checkpoint was written.")
        print(f"error: {result.reason} {where}", file=sys.stderr, flush=True)
        return 1
    print(result.reason, flush=True)
    card.update({"training_seconds": round(result.seconds, 1), "cpu": cpu_description(),
                 "stopped_early": result.status != "done"})
    if resume:
        card["resumed_after_epoch"] = done_before
    if not no_eval:
        card["evaluation"] = evaluate(result.model, dataset)
        print(json.dumps({k: v for k, v in card["evaluation"].items() if k != "kl_per_dim"}),
              flush=True)
    samples = result.model.generate_grid(range(4), range(10))
    path = save_checkpoint(result.model, out, result.history, card,
                           extra_files={"samples.png": to_png(tile(samples), scale=2)})
    print(f"Checkpoint written to {path}")
    return 0


def open_checkpoint(path):
    """A checkpoint folder, or a checkpoint zip (as the app downloads), checked before loading."""
    from .checkpoints import MAX_UPLOAD_BYTES, CheckpointError, load_checkpoint, load_checkpoint_zip

    path = Path(path)
    if path.is_file():
        if path.stat().st_size > MAX_UPLOAD_BYTES:
            raise CheckpointError(f"{path} is larger than {MAX_UPLOAD_BYTES // 2**20} MB: not a "
                                  "checkpoint zip of this app.")
        try:
            return load_checkpoint_zip(path.read_bytes())
        except CheckpointError as e:
            raise CheckpointError(f"{path}: {e}") from None
    return load_checkpoint(path)


def _evaluate(args) -> int:
    from .evaluate import evaluate

    print(json.dumps(evaluate(open_checkpoint(args.checkpoint)), indent=2))
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
    from .checkpoints import CheckpointError, load_checkpoint
    from .quality import load_judge, quality_report, update_card, write_latent_png

    model = load_checkpoint(args.checkpoint)
    if args.judge is not None:
        try:
            load_judge(model.config.dataset, args.judge)
        except FileNotFoundError:
            raise
        except Exception:  # Keras's reasons (and its safe_mode advice) are not for this line
            raise CheckpointError(f"{args.judge} is not a judge classifier saved by "
                                  "`python -m vae_core judge` (or it is damaged).") from None
    report = quality_report(model, judge_file=args.judge)
    if not args.no_write:
        if model.config.latent_dim == 2:
            write_latent_png(model, args.checkpoint)
        update_card(args.checkpoint, "quality", report)
    print(json.dumps(report, indent=2))
    return 0


def _int8(args) -> int:
    """The shipped checkpoints' last step: int8 Dense weights, then the ELBO measured again (the
    card's quality section is dropped: `quality DIR` must score the int8 model itself)."""
    from .checkpoints import load_checkpoint, save_checkpoint
    from .evaluate import evaluate
    from .images import tile, to_png

    model = load_checkpoint(args.checkpoint)
    if model.config.int8_dense:
        print(f"{args.checkpoint} already holds int8 Dense weights.")
        return 0
    small = model.with_int8_dense()
    card = {k: v for k, v in model.card.items() if k != "quality"}
    card["evaluation"] = evaluate(small)
    card["int8_dense"] = ("Dense weights stored as int8 with per-channel scales after training "
                          "(`python -m vae_core int8`); every figure here is measured on them")
    samples = small.generate_grid(range(4), range(10))
    save_checkpoint(small, args.checkpoint, model.history_log, card,
                    extra_files={"samples.png": to_png(tile(samples), scale=2)})
    print(json.dumps({k: v for k, v in card["evaluation"].items() if k != "kl_per_dim"}))
    return 0


class EpochSummary(keras.callbacks.Callback):
    """One readable line per epoch, whatever Keras's own progress bar does."""

    def __init__(self, epochs, steps: int | None = None):
        super().__init__()
        self.epochs, self.steps = epochs, steps

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.time()
        self._batches = 0

    def on_train_batch_end(self, batch, logs=None):
        self._batches += 1

    def on_epoch_end(self, epoch, logs=None):
        if self.steps and self._batches < self.steps:
            print(f"epoch {epoch + 1}/{self.epochs} interrupted after {self._batches} of "
                  f"{self.steps} batches (not kept)", flush=True)
            return
        parts = [f"{k} {v:.3f}" if "accuracy" in k else f"{k} {v:.2f}"
                 for k, v in sorted((logs or {}).items())]
        print(f"epoch {epoch + 1}/{self.epochs} ({time.time() - self._start:.1f} s): "
              + ", ".join(parts), flush=True)
