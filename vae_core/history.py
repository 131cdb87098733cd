"""Training history snapshots: how the latent map and the samples looked after every epoch.

Recorded during `training.train` (app and CLI alike), kept on the model as
`model.training_snapshots`, saved beside a checkpoint as a compressed `.npz` of plain arrays
(loaded with `allow_pickle=False`, so a checkpoint file can never run code), and played back by
the Latent page.

Per epoch: a 2-D map of a fixed set of test points (the latent itself for 2-D models, else a PCA
projection whose axis signs are aligned with the previous epoch's so an animation does not flip)
and the digits 0-9 decoded with one fixed shared style, as uint8.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import keras
import numpy as np

SNAPSHOT_POINTS = 500
SNAPSHOT_SEED = 2024  # which test images are mapped; fixed so every run maps the same ones
_FIELDS = ("epochs", "points", "labels", "samples", "explained", "style_seed")


@dataclass
class TrainingSnapshots:
    """Per-epoch pictures of a run; index i of each per-epoch array belongs to `epochs[i]`."""

    epochs: np.ndarray  # int32 (E,), 1-based epoch numbers
    points: np.ndarray  # float32 (E, n, 2): the fixed test points on the 2-D map
    labels: np.ndarray  # int32 (n,): their classes
    samples: np.ndarray  # uint8 (E, 10, 28, 28): one shared style written as 0-9 (or 10 samples)
    explained: np.ndarray  # float32 (E, 2): variance fraction per axis (1, 0 for 2-D latents)
    style_seed: int = 0

    def __len__(self) -> int:
        return len(self.epochs)

    @property
    def is_pca(self) -> bool:
        return bool(len(self) and self.explained[0, 1] > 0)

    def to_npz(self) -> bytes:
        buffer = io.BytesIO()
        np.savez_compressed(buffer, epochs=self.epochs, points=self.points, labels=self.labels,
                            samples=self.samples, explained=self.explained,
                            style_seed=np.int64(self.style_seed))
        return buffer.getvalue()

    @classmethod
    def from_npz(cls, data) -> "TrainingSnapshots":
        """Read `to_npz` output (bytes or a path); plain arrays only, shapes checked."""
        source = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
        with np.load(source, allow_pickle=False) as npz:
            if set(_FIELDS) - set(npz.files):
                raise ValueError("training snapshots file is missing fields")
            arrays = {name: npz[name] for name in _FIELDS}
        snaps = cls(epochs=arrays["epochs"].astype(np.int32),
                    points=arrays["points"].astype(np.float32),
                    labels=arrays["labels"].astype(np.int32),
                    samples=arrays["samples"].astype(np.uint8),
                    explained=arrays["explained"].astype(np.float32),
                    style_seed=int(arrays["style_seed"]))
        e, n = len(snaps.epochs), len(snaps.labels)
        if (snaps.points.shape != (e, n, 2) or snaps.samples.shape[0] != e
                or snaps.samples.shape[2:] != (28, 28) or snaps.explained.shape != (e, 2)):
            raise ValueError("training snapshots have inconsistent shapes")
        return snaps


def snapshot_indices(n_test: int, n: int = SNAPSHOT_POINTS) -> np.ndarray:
    return np.sort(np.random.default_rng(SNAPSHOT_SEED).choice(n_test, min(n, n_test),
                                                               replace=False))


def map_2d(means: np.ndarray, previous: np.ndarray | None = None):
    """Means (n, d) -> (points (n, 2), explained (2,)): identity for d = 2, else PCA.

    PCA axes have no sign of their own; each axis is flipped when that makes it agree better
    with the `previous` epoch's points, so consecutive frames do not mirror.
    """
    means = np.asarray(means, np.float32)
    if means.shape[1] == 2:
        return means.copy(), np.array([1.0, 0.0], np.float32)
    if means.shape[1] == 1:
        return np.concatenate([means, np.zeros_like(means)], axis=1), np.array([1.0, 0.0],
                                                                               np.float32)
    centred = means - means.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    points = centred @ vt[:2].T
    total = float(np.sum(s ** 2)) or 1.0
    explained = np.array([s[0] ** 2 / total, s[1] ** 2 / total], np.float32)
    if previous is not None:
        for axis in range(2):
            if float(np.dot(points[:, axis], previous[:, axis])) < 0:
                points[:, axis] *= -1
    return points.astype(np.float32), explained


class SnapshotRecorder(keras.callbacks.Callback):
    """Records one snapshot per finished epoch (skipped when the loss is not finite)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, style_seed: int):
        super().__init__()
        self.images, self.labels, self.style_seed = images, labels, int(style_seed)
        self._epochs, self._points, self._samples, self._explained = [], [], [], []

    def on_epoch_end(self, epoch, logs=None):
        loss = float((logs or {}).get("loss", 0.0))
        if not np.isfinite(loss):
            return
        from .images import to_uint8

        means = self.model.encode(self.images)[0]
        points, explained = map_2d(means, self._points[-1] if self._points else None)
        self._epochs.append(epoch + 1)
        self._points.append(points)
        self._explained.append(explained)
        self._samples.append(to_uint8(self.model.generate(list(range(10)), self.style_seed)))

    def snapshots(self) -> TrainingSnapshots | None:
        if not self._epochs:
            return None
        return TrainingSnapshots(
            epochs=np.array(self._epochs, np.int32), points=np.stack(self._points),
            labels=np.asarray(self.labels, np.int32), samples=np.stack(self._samples),
            explained=np.stack(self._explained), style_seed=self.style_seed)
