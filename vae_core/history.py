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
    """Records one snapshot per finished epoch (skipped when the loss is not finite).

    After every epoch the model's `training_snapshots` holds the run so far, so a checkpoint
    saved by a later callback in the same epoch (the CLI's) carries them; a resumed run passes
    the `earlier` epochs' snapshots and continues them.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, style_seed: int,
                 earlier: TrainingSnapshots | None = None):
        super().__init__()
        self.images, self.labels, self.style_seed = images, labels, int(style_seed)
        self._epochs, self._points, self._samples, self._explained = [], [], [], []
        if earlier is not None:
            self._epochs = [int(e) for e in earlier.epochs]
            self._points, self._samples = list(earlier.points), list(earlier.samples)
            self._explained = list(earlier.explained)

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
        self.model.training_snapshots = self.snapshots()

    def snapshots(self) -> TrainingSnapshots | None:
        if not self._epochs:
            return None
        return TrainingSnapshots(
            epochs=np.array(self._epochs, np.int32), points=np.stack(self._points),
            labels=np.asarray(self.labels, np.int32), samples=np.stack(self._samples),
            explained=np.stack(self._explained), style_seed=self.style_seed)


# Matplotlib's "tab10", one colour per class (as in the shipped latent.png pictures).
_COLOURS = np.array([(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40),
                     (148, 103, 189), (140, 86, 75), (227, 119, 194), (127, 127, 127),
                     (188, 189, 34), (23, 190, 207)], np.uint8)


def extent(snapshots: TrainingSnapshots, quantile: float = 0.995) -> float:
    """One symmetric axis limit that holds nearly every point of every epoch."""
    return max(1e-3, float(np.quantile(np.abs(snapshots.points), quantile)))


def render_frames(snapshots: TrainingSnapshots, lim: float | None = None,
                  size: int = 280) -> np.ndarray:
    """One RGB picture per epoch, uint8 (E, size + 40, size, 3): the latent map (dots coloured
    by class, all epochs on the same axes) above that epoch's row of samples."""
    from PIL import Image, ImageDraw

    lim = lim or 1.05 * extent(snapshots)
    row_height = round(28 * size / 280)
    frames = []
    for i, epoch in enumerate(snapshots.epochs):
        picture = Image.new("RGB", (size, size + row_height + 12), "white")
        draw = ImageDraw.Draw(picture)
        draw.line([(size / 2, 0), (size / 2, size)], fill=(225, 225, 225))
        draw.line([(0, size / 2), (size, size / 2)], fill=(225, 225, 225))
        xy = (snapshots.points[i] / lim * 0.5 + 0.5) * (size - 1)
        for (x, y), label in zip(xy, snapshots.labels):
            if 0 <= x < size and 0 <= y < size:
                y = size - 1 - y  # up is positive, as on the page's charts
                draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=tuple(int(c) for c in
                                                                        _COLOURS[label % 10]))
        draw.text((6, 4), f"epoch {int(epoch)}", fill=(20, 20, 20))
        row = np.concatenate(list(snapshots.samples[i]), axis=1)  # (28, 280) uint8
        row = Image.fromarray(row).resize((size, row_height), Image.NEAREST).convert("RGB")
        picture.paste(row, (0, size + 12))
        frames.append(np.asarray(picture))
    return np.stack(frames)
