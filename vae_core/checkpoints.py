"""Checkpoint folders: model.keras + config.json + history.json + card.json (+ the run's
training_snapshots.npz), written atomically.

The folder is assembled under a temporary name beside its destination and renamed into place, so
a killed process leaves either the old checkpoint or the new one, never half of one.
"""

from __future__ import annotations

import datetime
import io
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import keras
import numpy as np

from .config import VAEConfig
from .history import TrainingSnapshots
from .models import VAE

MODEL_FILE = "model.keras"
CONFIG_FILE = "config.json"
HISTORY_FILE = "history.json"
CARD_FILE = "card.json"
SNAPSHOTS_FILE = "training_snapshots.npz"


class CheckpointError(RuntimeError):
    """A folder that is not a loadable checkpoint; the message says what is wrong."""


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
        twin = VAE(model.config, name=model.name)
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


def list_checkpoints(folder) -> list[Path]:
    """Checkpoint folders directly inside `folder`, sorted; hidden (partial) folders skipped."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if not p.name.startswith(".") and is_checkpoint(p))


def load_checkpoint(path) -> VAE:
    """Load a checkpoint folder (safe_mode: no arbitrary code). Adds `.history` and `.card`."""
    path = Path(path)
    if not is_checkpoint(path):
        raise CheckpointError(f"{path} is not a checkpoint folder: it needs {MODEL_FILE} "
                              f"and {CONFIG_FILE}.")
    try:
        model = keras.saving.load_model(path / MODEL_FILE, compile=False, safe_mode=True)
    except Exception as e:
        raise CheckpointError(f"Could not load the model in {path}: {e}") from e
    if not isinstance(model, VAE):
        raise CheckpointError(f"{path / MODEL_FILE} holds a {type(model).__name__}, not a VAE.")
    model.history_log = _read_json(path / HISTORY_FILE)
    model.card = _read_json(path / CARD_FILE)
    model.training_snapshots = _read_snapshots(path / SNAPSHOTS_FILE)
    model.checkpoint_path = path
    return model


def load_checkpoint_zip(data: bytes) -> VAE:
    """Load a checkpoint uploaded as a zip (as made by `checkpoint_zip`), refusing anything odd."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise CheckpointError("That file is not a zip archive of a checkpoint.") from None
    with archive, tempfile.TemporaryDirectory() as tmp:
        for info in archive.infolist():
            name = Path(info.filename).name
            if info.is_dir() or name not in (MODEL_FILE, CONFIG_FILE, HISTORY_FILE, CARD_FILE,
                                                      SNAPSHOTS_FILE):
                continue
            if info.file_size > 200 * 2**20:
                raise CheckpointError(f"{name} in the zip is implausibly large.")
            (Path(tmp) / name).write_bytes(archive.read(info))
        if not is_checkpoint(tmp):
            raise CheckpointError(f"The zip holds no checkpoint: it needs {MODEL_FILE} and "
                                  f"{CONFIG_FILE} (as in the zips the Train page downloads).")
        try:
            model = load_checkpoint(tmp)
        except CheckpointError as e:
            reason = str(e.__cause__ or e).replace(f"{tmp}{os.sep}", "").replace(tmp, "")
            raise CheckpointError(f"The model in the zip cannot be loaded: {reason}") from e
        model.checkpoint_path = None
        return model


def checkpoint_zip(path) -> bytes:
    """The checkpoint folder as zip bytes, for a download button."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(Path(path).iterdir()):
            if file.is_file():
                archive.write(file, f"{Path(path).name}/{file.name}")
    return buffer.getvalue()


def _read_json(file: Path):
    try:
        return json.loads(file.read_text())
    except (OSError, ValueError):
        return {}


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
