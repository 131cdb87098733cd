"""Checkpoint folders: model.keras + config.json + history.json + card.json (+ the run's
training_snapshots.npz), written atomically.

The folder is assembled under a temporary name beside its destination and renamed into place, so
a killed process leaves either the old checkpoint or the new one, never half of one.
"""

from __future__ import annotations

import datetime
import io
import json
import logging
import os
import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath, PureWindowsPath

import keras
import numpy as np

from .config import RETIRED_TAG, ConfigError, VAEConfig
from .history import TrainingSnapshots
from .models import VAE

MODEL_FILE = "model.keras"
CONFIG_FILE = "config.json"
HISTORY_FILE = "history.json"
CARD_FILE = "card.json"
SNAPSHOTS_FILE = "training_snapshots.npz"
STATE_FILE = "training_state.npz"  # optimizer state of an unfinished CLI run (for --resume)
ZIP_FILES = (MODEL_FILE, CONFIG_FILE, HISTORY_FILE, CARD_FILE, SNAPSHOTS_FILE)  # what a checkpoint zip may hold

# Limits checked from the zip's directory BEFORE anything is extracted (zip bombs, floods).
MAX_UPLOAD_BYTES = 100 * 2**20
MAX_ZIP_ENTRIES = 64
MAX_UNCOMPRESSED_BYTES = 200 * 2**20  # all entries together
MAX_COMPRESSION_RATIO = 50  # per entry larger than RATIO_CHECK_BYTES; real weights barely shrink
RATIO_CHECK_BYTES = 2**20

log = logging.getLogger("vae_core.checkpoints")


class CheckpointError(RuntimeError):
    """A folder that is not a loadable checkpoint; the message says what is wrong."""


NOT_OURS = ("it is damaged, or it is not a model saved by VAE Lab")


def save_checkpoint(model: VAE, path, history: dict | None = None, card: dict | None = None,
                    extra_files: dict[str, bytes] | None = None) -> Path:
    """Write `model` (weights only, no optimizer state) and its description to folder `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    history = _plain(history or {})
    card = {**default_card(model.config, history), **_plain(card or {})}
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp's private 0700 would otherwise become the checkpoint's mode
        # A fresh, uncompiled twin holds the same weights without the optimizer's slots, which
        # would triple the file size and mean nothing to someone loading it for inference.
        twin = VAE(model.config, int8_dense=model.int8_dense, name=model.name)
        twin.set_weights(model.get_weights())
        twin.save(tmp / MODEL_FILE)
        (tmp / CONFIG_FILE).write_text(model.config.to_json())
        (tmp / HISTORY_FILE).write_text(json.dumps(history, indent=1))
        (tmp / CARD_FILE).write_text(json.dumps(card, indent=2))
        snapshots = getattr(model, "training_snapshots", None)
        if snapshots is not None:
            (tmp / SNAPSHOTS_FILE).write_bytes(snapshots.to_npz())
        for name, data in (extra_files or {}).items():
            (tmp / name).write_bytes(data)
        _replace_dir(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _replace_dir(new: Path, dest: Path):
    """Rename `new` to `dest`; an existing `dest` is moved aside first and removed after."""
    old = None
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(dest, old)
    os.replace(new, dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def default_card(config: VAEConfig, history: dict) -> dict:
    final = {k: v[-1] for k, v in history.items() if isinstance(v, list) and v}
    return {
        "dataset": config.dataset,
        "architecture": config.arch,
        "conditional": config.conditional,
        "latent_dim": config.latent_dim,
        "beta": config.beta,
        "epochs_trained": len(history.get("loss", [])),
        "final_metrics": final,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def is_checkpoint(path) -> bool:
    path = Path(path)
    return (path / MODEL_FILE).is_file() and (path / CONFIG_FILE).is_file()


def read_config_and_card(path) -> tuple[VAEConfig, dict]:
    """A checkpoint's config and card, read from its JSON files without loading the model."""
    path = Path(path)
    try:
        config = VAEConfig.from_json((path / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{path / CONFIG_FILE} cannot be read: {e}") from None
    return config, _read_json(path / CARD_FILE)


def list_checkpoints(folder) -> list[Path]:
    """Checkpoint folders directly inside `folder`, sorted; hidden (partial) folders skipped."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if not p.name.startswith(".") and is_checkpoint(p))


def load_checkpoint(path) -> VAE:
    """Load a checkpoint folder (safe_mode: no arbitrary code). Adds `.history` and `.card`.

    A `.keras` file is checked before Keras sees it: a zip within the size limits whose config
    names this project's VAE class. Anything else (another Keras model, a Lambda layer, random
    bytes) is a `CheckpointError` with a one-sentence reason and no Keras internals.
    """
    path = Path(path)
    if not path.is_dir():
        what = "does not exist" if not path.exists() else "is a file, not a checkpoint folder"
        raise CheckpointError(f"{path} {what}: a checkpoint is a folder holding {MODEL_FILE} "
                              f"and {CONFIG_FILE}.")
    if not is_checkpoint(path):
        raise CheckpointError(f"{path} is not a checkpoint folder: it needs {MODEL_FILE} "
                              f"and {CONFIG_FILE}.")
    try:
        model = _load_model_file(path)
    except CheckpointError as e:
        raise CheckpointError(f"{path / MODEL_FILE} cannot be loaded: {e}") from None
    model.checkpoint_path = path
    return model


def _load_model_file(folder: Path, uploaded: bool = False) -> VAE:
    """The VAE in `folder`; CheckpointError messages name no paths (they may reach a visitor).

    `uploaded` applies the upload size limits; a local folder may hold a (much) larger model.
    """
    max_total = MAX_UNCOMPRESSED_BYTES if uploaded else 16 * 2**30
    try:
        VAEConfig.from_json((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    except ConfigError as e:
        if RETIRED_TAG in str(e):  # a real model of an older VAE Lab: say where it still loads
            raise CheckpointError(str(e).rstrip(".")) from None
        raise CheckpointError(f"its {CONFIG_FILE} is not a valid model description ({e})") from None
    except (ValueError, UnicodeDecodeError, OSError) as e:
        raise CheckpointError(f"its {CONFIG_FILE} is not a valid model description ({e})") from None
    file = folder / MODEL_FILE
    try:
        with zipfile.ZipFile(file) as archive:
            check_zip(archive, "the model file", max_total)
            if "config.json" not in archive.namelist():
                raise CheckpointError(f"{NOT_OURS} (no model description inside)")
            with archive.open("config.json") as f:
                inner = json.loads(f.read(2**20).decode("utf-8"))
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, ValueError, UnicodeDecodeError, OSError, EOFError):
        raise CheckpointError(f"{NOT_OURS} (not a readable .keras file)") from None
    if not (isinstance(inner, dict) and inner.get("registered_name") == "vae_core>VAE"
            and inner.get("class_name") == "VAE"):
        raise CheckpointError("it holds a different kind of Keras model, not a VAE Lab model; "
                              "only models trained in VAE Lab or with `python -m vae_core` load")
    try:
        model = keras.saving.load_model(file, compile=False, safe_mode=True)
    except Exception as e:  # details are for the server log, not for the person uploading
        log.warning("refused model file: %s: %s", type(e).__name__, e)
        raise CheckpointError(f"{NOT_OURS} (its weights could not be read safely)") from None
    if not isinstance(model, VAE):
        raise CheckpointError(f"it holds a {type(model).__name__}, not a VAE Lab model")
    history = _read_json(folder / HISTORY_FILE)
    model.history_log = {k: v for k, v in history.items()  # only per-epoch number lists
                         if isinstance(v, list) and all(isinstance(x, (int, float)) for x in v)}
    model.card = _read_json(folder / CARD_FILE)
    model.training_snapshots = _read_snapshots(folder / SNAPSHOTS_FILE)
    return model


def check_zip(archive: zipfile.ZipFile, what: str = "the zip",
              max_total: int = MAX_UNCOMPRESSED_BYTES):
    """Refuse a zip by its directory alone, before extracting anything.

    Zip slip (absolute paths, `..`, drive letters), too many entries, too much data in total,
    suspicious compression ratios (zip bombs) and encrypted entries are all refused.
    """
    infos = archive.infolist()
    if len(infos) > MAX_ZIP_ENTRIES:
        raise CheckpointError(f"{what} holds {len(infos)} files; a checkpoint has only a few")
    total = 0
    for info in infos:
        name = info.filename
        posix, windows = PurePosixPath(name), PureWindowsPath(name)
        if (posix.is_absolute() or windows.anchor
                or ".." in posix.parts or ".." in windows.parts or "\x00" in name):
            raise CheckpointError(f"{what} contains a file path that points outside its folder, "
                                  "which is not allowed")
        if info.flag_bits & 0x1:
            raise CheckpointError(f"{what} is password-protected")
        total += info.file_size
        if total > max_total:
            raise CheckpointError(f"{what} unpacks to more than {max_total // 2**20} MB, far "
                                  "more than a model of this app")
        if (info.file_size > RATIO_CHECK_BYTES
                and info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1)):
            raise CheckpointError(f"{what} is compressed suspiciously well (a 'zip bomb'?), "
                                  "so it was not unpacked")


def load_checkpoint_zip(data: bytes) -> VAE:
    """Load a checkpoint uploaded as a zip (as made by `checkpoint_zip`), refusing anything odd.

    Only the checkpoint's own files are extracted, by their base name, into a private temporary
    folder that is removed afterwards; every message is a sentence without server paths.
    """
    if not data:
        raise CheckpointError("That file is empty.")
    if len(data) > MAX_UPLOAD_BYTES:
        raise CheckpointError(f"That file is larger than {MAX_UPLOAD_BYTES // 2**20} MB; a "
                              "checkpoint zip from this app is a few MB.")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):
        raise CheckpointError("That file is not a zip archive of a checkpoint (it may be "
                              "damaged or cut short).") from None
    with archive, tempfile.TemporaryDirectory(prefix="vae-lab-upload-") as tmp:
        try:
            check_zip(archive)
        except CheckpointError as e:
            raise CheckpointError(f"That zip was refused: {e}.") from None
        seen = set()
        for info in archive.infolist():
            parts = PurePosixPath(info.filename).parts
            name = parts[-1] if parts else ""
            if info.is_dir() or name not in ZIP_FILES:
                continue
            if len(parts) > 2:
                continue  # a checkpoint zip has its files at the top or in one folder
            if name in seen:
                raise CheckpointError(f"That zip holds more than one {name}; it should hold "
                                      "exactly one checkpoint.")
            seen.add(name)
            try:
                (Path(tmp) / name).write_bytes(archive.read(info))
            except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError):
                raise CheckpointError("That zip is damaged (a file in it cannot be unpacked)."
                                      ) from None
        if not is_checkpoint(tmp):
            raise CheckpointError(f"The zip holds no checkpoint: it needs {MODEL_FILE} and "
                                  f"{CONFIG_FILE} (as in the zips the Train page downloads).")
        try:
            model = _load_model_file(Path(tmp), uploaded=True)
        except CheckpointError as e:
            raise CheckpointError(f"The model in the zip cannot be loaded: {e}.") from None
        model.checkpoint_path = None
        return model


def save_training_state(model: VAE, epochs_done: int, settings: dict) -> bytes:
    """Optimizer state, sampling RNG and run settings after `epochs_done` epochs, as npz bytes.

    It lives beside model.keras in a CLI run's folder until the run finishes; shipped and
    downloaded checkpoints never carry it (they stay weights-only and small).
    """
    from .training import seed_variables

    arrays = {f"opt_{i}": np.asarray(v.numpy()) for i, v in enumerate(model.optimizer.variables)}
    arrays.update({f"seed_{i}": np.asarray(v.numpy()) for i, v in enumerate(seed_variables(model))})
    meta = {"epochs_done": epochs_done, "settings": settings,
            "optimizer": len(model.optimizer.variables), "seeds": len(seed_variables(model))}
    arrays["meta"] = np.array(json.dumps(meta))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def load_resume_state(path):
    """(model, ResumeState, settings) of an unfinished CLI run's checkpoint folder."""
    from .training import ResumeState

    path = Path(path)
    model = load_checkpoint(path)
    state_file = path / STATE_FILE
    if not state_file.is_file():
        raise CheckpointError(f"{path} holds no training state to resume: the run finished "
                              "(or the folder was not written by `python -m vae_core train`).")
    try:
        with np.load(state_file, allow_pickle=False) as npz:
            meta = json.loads(str(npz["meta"]))
            optimizer = [npz[f"opt_{i}"] for i in range(meta["optimizer"])]
            seeds = [npz[f"seed_{i}"] for i in range(meta["seeds"])]
        epochs_done = int(meta["epochs_done"])
        settings = dict(meta["settings"])
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile, EOFError):
        raise CheckpointError(f"{state_file} is damaged: the run cannot be resumed.") from None
    history = {k: list(v)[:epochs_done] for k, v in model.history_log.items()
               if isinstance(v, list)}
    if len(history.get("loss", [])) != epochs_done:
        raise CheckpointError(f"{path}: its history and training state disagree; the run cannot "
                              "be resumed.")
    state = ResumeState(epochs_done=epochs_done, history=history, weights=model.get_weights(),
                        optimizer_variables=optimizer, seed_states=seeds,
                        snapshots=_first_epochs(model.training_snapshots, epochs_done))
    return model, state, settings


def _first_epochs(snapshots: TrainingSnapshots | None, n: int) -> TrainingSnapshots | None:
    """The snapshots of epochs 1..n only (a run saved mid-way has exactly those)."""
    if snapshots is None or len(snapshots) < n or not n:
        return None
    keep = snapshots.epochs <= n
    return TrainingSnapshots(snapshots.epochs[keep], snapshots.points[keep], snapshots.labels,
                             snapshots.samples[keep], snapshots.explained[keep],
                             snapshots.style_seed)


def open_checkpoint(path) -> VAE:
    """A checkpoint folder, or a checkpoint zip (as the app downloads), checked before loading."""
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


def checkpoint_zip(path) -> bytes:
    """The checkpoint folder as zip bytes, for a download button."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(Path(path).iterdir()):
            if file.is_file() and file.name != STATE_FILE:
                archive.write(file, f"{Path(path).name}/{file.name}")
    return buffer.getvalue()


def _read_json(file: Path) -> dict:
    """A JSON object from `file`; {} when absent, unreadable or not an object."""
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def _read_snapshots(file: Path) -> TrainingSnapshots | None:
    """The run's per-epoch snapshots; None when absent (older checkpoints) or unreadable."""
    if not file.is_file():
        return None
    try:
        return TrainingSnapshots.from_npz(file)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None


def _plain(obj):
    """JSON-safe copy: numpy scalars/arrays to Python numbers/lists."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj
