"""MNIST and Fashion-MNIST through Keras's own download and cache (`KERAS_HOME` respected)."""

from __future__ import annotations

import functools
import json
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import DATASETS

CLASS_NAMES = {
    "mnist": tuple(str(d) for d in range(10)),
    "fashion_mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
}
DISPLAY_NAMES = {"mnist": "MNIST digits", "fashion_mnist": "Fashion-MNIST garments"}


class DataUnavailableError(RuntimeError):
    """The dataset is neither cached nor downloadable; the message says how to fix that."""


@dataclass(frozen=True)
class Dataset:
    name: str
    x_train: np.ndarray  # float32 (60000, 28, 28) in [0, 1]
    y_train: np.ndarray  # int64 (60000,)
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def class_names(self) -> tuple[str, ...]:
        return CLASS_NAMES[self.name]

    def head(self, n_train: int, n_test: int | None = None) -> "Dataset":
        """The first n_train training (and n_test test) images: quick runs, tests, demos."""
        if n_train < 1 or (n_test is not None and n_test < 1):
            raise ValueError("A dataset subset needs at least one image.")
        n_test = len(self.x_test) if n_test is None else n_test
        return Dataset(self.name, self.x_train[:n_train], self.y_train[:n_train],
                       self.x_test[:n_test], self.y_test[:n_test])


CACHE_VERSION = 1
CACHE_ENV = "VAE_CORE_DATA_CACHE"
"""A folder for the normalised-array cache, or "off"; default: <KERAS_HOME>/vae_core_cache."""
_PARTS = ("x_train", "y_train", "x_test", "y_test")


def cache_dir() -> Path | None:
    """Where normalised arrays are cached beside Keras's own cache (None when switched off)."""
    setting = os.environ.get(CACHE_ENV, "")
    if setting.lower() == "off":
        return None
    if setting:
        return Path(setting)
    keras_home = os.environ.get("KERAS_HOME") or Path.home() / ".keras"
    return Path(keras_home) / "vae_core_cache"


_load_lock = threading.Lock()


def load_dataset(name: str) -> Dataset:
    """Load (and cache in-process, read-only) one dataset, scaled to float32 [0, 1].

    One copy per process, even when many visitors press Start at the same moment: without the
    lock each concurrent first call built its own 220 MB copy (lru_cache does not wait).
    The scaled arrays are also kept on disk as .npy files (see `cache_dir`), memory-mapped on
    later loads: a new process skips decompressing and converting the Keras download. A missing,
    truncated or inconsistent cache is rebuilt from Keras's copy; a read-only folder just means
    no disk cache.
    """
    with _load_lock:
        return _load_dataset(name)


load_dataset.cache_clear = lambda: _load_dataset.cache_clear()  # noqa: E731 (tests)


@functools.lru_cache(maxsize=2)
def _load_dataset(name: str) -> Dataset:
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}: choose one of {', '.join(DATASETS)}.")
    folder = cache_dir()
    cached = _read_cache(folder / name, name) if folder is not None else None
    if cached is not None:
        return cached
    dataset = _load_from_keras(name)
    if folder is not None:
        _write_cache(folder / name, dataset)
    return dataset


def _read_cache(folder: Path, name: str) -> Dataset | None:
    try:
        meta = json.loads((folder / "meta.json").read_text())
        if meta.get("version") != CACHE_VERSION or meta.get("name") != name:
            return None
        arrays = {}
        for part in _PARTS:
            array = np.load(folder / f"{part}.npy", mmap_mode="r", allow_pickle=False)
            expected = meta["arrays"][part]
            if list(array.shape) != expected["shape"] or str(array.dtype) != expected["dtype"]:
                return None
            arrays[part] = np.asarray(array)  # a read-only ndarray over the mapped file
        if _signature(arrays) != meta["signature"]:
            return None
        return Dataset(name, *(arrays[p] for p in _PARTS))
    except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError):
        return None  # missing, truncated or garbled: rebuilt by the caller


def _write_cache(folder: Path, dataset: Dataset):
    arrays = {p: getattr(dataset, p) for p in _PARTS}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "meta.json").unlink(missing_ok=True)  # invalid until every array is in place
        for part, array in arrays.items():
            fd, tmp = tempfile.mkstemp(prefix=f".{part}.", suffix=".npy", dir=folder)
            with os.fdopen(fd, "wb") as f:
                np.save(f, array, allow_pickle=False)
            os.chmod(tmp, 0o644)
            os.replace(tmp, folder / f"{part}.npy")
        meta = {"version": CACHE_VERSION, "name": dataset.name, "signature": _signature(arrays),
                "arrays": {p: {"shape": list(a.shape), "dtype": str(a.dtype)}
                           for p, a in arrays.items()}}
        fd, tmp = tempfile.mkstemp(prefix=".meta.", suffix=".json", dir=folder)
        with os.fdopen(fd, "w") as f:
            json.dump(meta, f)
        os.replace(tmp, folder / "meta.json")
    except OSError:
        pass  # a read-only or full disk: no cache, nothing else changes


def _signature(arrays: dict) -> list[float]:
    """Cheap sums over slices spread through each array: catches truncated or mixed-up files."""
    out = []
    for part in _PARTS:
        a = arrays[part]
        idx = np.linspace(0, len(a) - 1, 64).astype(int)
        out.append(round(float(np.asarray(a[idx], np.float64).sum()), 3))
    return out


def _load_from_keras(name: str) -> Dataset:
    import keras

    loader = getattr(keras.datasets, name)
    try:
        (x_train, y_train), (x_test, y_test) = loader.load_data()
    except Exception as e:  # urllib, HTTP, hash mismatch, truncated file...
        raise DataUnavailableError(
            f"Could not load {DISPLAY_NAMES[name]}: Keras found no cached copy and the download "
            f"failed ({type(e).__name__}: {e}). Connect to the internet once so Keras can "
            f"download it (about 10-30 MB), or point the KERAS_HOME environment variable at a "
            f"folder whose 'datasets' subfolder holds the Keras cache files."
        ) from e

    def prepare(x, y):
        x = x.astype(np.float32)
        x /= 255.0  # in place: no second 188 MB temporary while loading
        y = y.astype(np.int64)
        x.flags.writeable = False
        y.flags.writeable = False
        return x, y

    return Dataset(name, *prepare(x_train, y_train), *prepare(x_test, y_test))
