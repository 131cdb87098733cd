"""Command line: `python -m vae_core train ...`, `evaluate DIR`, `quality DIR`, `int8 DIR`, `judge`.

The train command has one flag per `VAEConfig` field, made from the field itself (its name, type,
choices and help), so a new setting needs no CLI code.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shlex
import signal
import sys
import threading
from pathlib import Path

import keras

from .config import DATASETS, PRESETS, ConfigError, VAEConfig, parse_hidden
from .hardware import cpu_description


def config_flag(f: dataclasses.Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def add_config_flags(parser: argparse.ArgumentParser):
    """One flag per config field; unset flags stay out of the namespace (the preset or the
    field's default applies)."""
    group = parser.add_argument_group("settings (default: the preset's, else VAEConfig's)")
    for f in dataclasses.fields(VAEConfig):
        kwargs = dict(dest=f.name, default=argparse.SUPPRESS,
                      help=f"{f.metadata['help']} (default {_shown(f.default)})")
        if f.type == "bool":
            kwargs["action"] = argparse.BooleanOptionalAction
        elif f.metadata.get("choices"):
            kwargs["choices"] = f.metadata["choices"]
        else:
            kwargs["type"] = {"int": int, "float": float}.get(f.type, str)  # hidden: parsed later
        group.add_argument(config_flag(f), **kwargs)


def _shown(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def config_from_args(args: argparse.Namespace) -> VAEConfig:
    """The preset (or the defaults), with every flag given on the command line applied."""
    base = VAEConfig()
    if args.preset is not None:
        if args.preset not in PRESETS:
            raise ConfigError(f"Unknown preset {args.preset!r}: choose one of "
                              f"{', '.join(PRESETS)}.")
        base = PRESETS[args.preset]
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(VAEConfig)
             if hasattr(args, f.name)}
    if "hidden" in given:
        given["hidden"] = parse_hidden(given["hidden"])
    return base.replace(**given)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vae_core",
                                     description="Train and evaluate VAEs on MNIST/Fashion-MNIST.")
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model and write a checkpoint folder")
    t.add_argument("--preset", default=None, metavar="NAME",
                   help=f"start from a named recipe: {', '.join(PRESETS)}")
    t.add_argument("--out", default=None,
                   help="checkpoint folder to write (rewritten after every epoch)")
    t.add_argument("--resume", default=None, metavar="DIR",
                   help="continue the interrupted run whose checkpoint folder is DIR (its "
                        "settings are used; other training flags are ignored)")
    t.add_argument("--no-eval", action="store_true", help="skip the test-set evaluation")
    t.add_argument("--max-train-images", type=int, default=None,
                   help="train on only the first N training images (quick experiments)")
    add_config_flags(t)

    e = sub.add_parser("evaluate", help="print a checkpoint's test-set evaluation as JSON")
    e.add_argument("checkpoint", help="checkpoint folder, or a checkpoint zip from the app")

    j = sub.add_parser("judge", help="train the independent classifier that scores samples")
    j.add_argument("--dataset", choices=DATASETS, default="mnist")
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


def _train(args, argv) -> int:
    from .checkpoints import load_resume_state, save_checkpoint
    from .data import load_dataset
    from .evaluate import evaluate
    from .images import tile, to_png
    from .training import EpochCheckpoint, EpochSummary, train

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
        config = config_from_args(args)
        if args.out is None:
            raise ConfigError("--out is required: the checkpoint folder to write "
                              "(or --resume DIR to continue a run).")
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


def _evaluate(args) -> int:
    from .checkpoints import open_checkpoint
    from .evaluate import evaluate

    print(json.dumps(evaluate(open_checkpoint(args.checkpoint)), indent=2))
    return 0


def _judge(args, argv) -> int:
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
    if model.int8_dense:
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
