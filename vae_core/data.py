"""MNIST and Fashion-MNIST through Keras's own download and cache (`KERAS_HOME` respected)."""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass

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


_load_lock = threading.Lock()


def load_dataset(name: str) -> Dataset:
    """Load (and cache in-process, read-only) one dataset, scaled to float32 [0, 1].

    One copy per process, even when many visitors press Start at the same moment: without the
    lock each concurrent first call built its own 220 MB copy (lru_cache does not wait).
    """
    with _load_lock:
        return _load_dataset(name)


load_dataset.cache_clear = lambda: _load_dataset.cache_clear()  # noqa: E731 (tests)


@functools.lru_cache(maxsize=2)
def _load_dataset(name: str) -> Dataset:
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}: choose one of {', '.join(DATASETS)}.")
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
