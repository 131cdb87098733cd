"""Training with live progress: one `train` function and the callbacks that stream what it does.

`train` is safe to call from a background thread: it never touches UI state, and everything a
viewer needs (per-batch metrics, per-epoch sample grids, reconstructions, 2-D latent scatters)
is written to a lock-protected `TrainingProgress` that any thread may `snapshot()`.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from dataclasses import dataclass, field

import keras
import numpy as np

from .config import VAEConfig
from .data import Dataset, load_dataset
from .history import SnapshotRecorder, snapshot_indices
from .models import VAE

PREVIEW_RECONSTRUCTIONS = 8
PREVIEW_LATENT_POINTS = 1000


@dataclass
class EpochPreview:
    """What a viewer sees after an epoch: the model's state made visible."""

    epoch: int  # 1-based
    metrics: dict
    style_seed: int
    samples: np.ndarray  # (10, 28, 28): digits 0-9 sharing one style sample
    reconstructions: np.ndarray  # (k, 28, 28), of `TrainingProgress.preview_originals`
    latent_means: np.ndarray | None  # (n, 2) for 2-D latent models, else None


@dataclass
class TrainingProgress:
    """Thread-safe record of a run. The training thread writes; viewers call `snapshot()`."""

    config: VAEConfig
    status: str = "pending"  # pending -> running -> done | stopped | failed
    reason: str = ""
    epoch: int = 0  # epochs completed
    batch: int = 0  # batches completed in the current epoch
    steps_per_epoch: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    batches: list = field(default_factory=list)  # dicts: step, epoch, and per-batch loss terms
    epochs: list = field(default_factory=list)  # EpochPreview per finished epoch
    preview_originals: np.ndarray | None = None
    preview_labels: np.ndarray | None = None  # labels of the latent-scatter points
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def update(self, **changes):
        with self._lock:
            for key, value in changes.items():
                setattr(self, key, value)

    def add_batch(self, record: dict, batch: int):
        with self._lock:
            self.batches.append(record)
            self.batch = batch

    def add_epoch(self, preview: EpochPreview):
        with self._lock:
            self.epochs.append(preview)
            self.epoch = preview.epoch
            self.batch = 0

    def snapshot(self) -> "TrainingProgress":
        """A consistent copy to read without holding the lock (lists copied, arrays shared)."""
        with self._lock:
            snap = copy.copy(self)
            snap.batches = list(self.batches)
            snap.epochs = list(self.epochs)
            snap._lock = threading.Lock()
            return snap

    @property
    def finished(self) -> bool:
        return self.status in ("done", "stopped", "failed")

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.config.epochs

    @property
    def steps_done(self) -> int:
        return self.epoch * self.steps_per_epoch + self.batch

    def seconds_left(self) -> float | None:
        """Remaining time at the average pace so far; None until a few batches have run."""
        if self.started_at is None or self.steps_done < 5 or self.finished:
            return None
        elapsed = time.time() - self.started_at
        return elapsed / self.steps_done * (self.total_steps - self.steps_done)


def epoch_style_seed(config: VAEConfig, epoch: int) -> int:
    """A new, reproducible shared style sample for each epoch's preview grid."""
    return config.seed * 1000 + epoch


class KLWarmup(keras.callbacks.Callback):
    """Ramps the KL weight linearly from 0 to beta over the first `epochs` epochs, per batch."""

    def __init__(self, beta: float, epochs: int, steps_per_epoch: int):
        super().__init__()
        self.beta, self.epochs, self.steps = beta, epochs, steps_per_epoch
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        fraction = min(1.0, (self._epoch + batch / self.steps) / self.epochs)
        self.model.kl_weight.assign(self.beta * fraction)


class ProgressCallback(keras.callbacks.Callback):
    """Streams a run into a `TrainingProgress`; stops on request or on a non-finite loss.

    Keras checks `stop_training` after every batch, so a stop request or a NaN ends training
    within one batch.
    """

    def __init__(self, progress: TrainingProgress, stop_event: threading.Event | None,
                 preview_images: np.ndarray, latent_images: np.ndarray | None):
        super().__init__()
        self.progress = progress
        self.stop_event = stop_event
        self.preview_images = preview_images
        self.latent_images = latent_images
        self._epoch = 0
        self._previous = {}

    def on_train_begin(self, logs=None):
        self.progress.update(status="running", started_at=time.time())

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._previous = {}

    def on_train_batch_end(self, batch, logs=None):
        # Keras reports running means over the epoch; recover this batch's own values from them.
        k = batch + 1
        record = {"step": self._epoch * self.progress.steps_per_epoch + k, "epoch": self._epoch + 1}
        for name, running in (logs or {}).items():
            running = float(running)
            prev = self._previous.get(name)
            record[name] = running if prev is None else running * k - prev * (k - 1)
            self._previous[name] = running
        self.progress.add_batch(record, batch=k)
        loss = record.get("loss", 0.0)
        if not math.isfinite(loss):
            self.progress.update(
                status="stopping",
                reason=f"Stopped: the loss became {loss} at epoch {self._epoch + 1}, batch {k}. "
                       "Try a smaller learning rate.")
            self.model.stop_training = True
        elif self.stop_event is not None and self.stop_event.is_set():
            self.progress.update(status="stopping",
                                 reason=f"Stopped by request at epoch {self._epoch + 1}, batch {k}.")
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if not math.isfinite(float((logs or {}).get("loss", 0.0))):
            return  # nothing worth showing from a diverged model
        self.progress.add_epoch(make_preview(
            self.model, epoch + 1, {k: float(v) for k, v in (logs or {}).items()},
            self.preview_images, self.latent_images))


def make_preview(model: VAE, epoch: int, metrics: dict, preview_images, latent_images):
    seed = epoch_style_seed(model.config, epoch)
    return EpochPreview(
        epoch=epoch, metrics=metrics, style_seed=seed,
        samples=model.generate(list(range(10)), seed),
        reconstructions=reconstruct(model, preview_images),
        latent_means=(model.encode(latent_images)[0]
                      if latent_images is not None and model.config.latent_dim == 2 else None))


def reconstruct(model: VAE, images) -> np.ndarray:
    """Deterministic reconstructions: decode the posterior mean (with predicted class slots)."""
    mean, _ = model.encode(images)
    if model.config.conditional:
        mean = np.concatenate([mean, model.classify(images)], axis=1)
    return model.decode(mean)


@dataclass
class TrainResult:
    model: VAE
    history: dict  # per-epoch metrics, Keras History.history form
    status: str  # done | stopped
    reason: str
    seconds: float


def make_pipeline(x, y, batch_size: int, shuffle_seed: int | None):
    """A tf.data pipeline that shuffles indices and gathers whole batches.

    Shuffling 60k indices instead of 60k images keeps the shuffle buffer at 0.5 MB instead of a
    second 188 MB copy of the training set, and one gather per batch replaces 128 per-element
    steps, so batches are assembled off the Python training loop and prefetched.
    """
    import tensorflow as tf

    images = tf.constant(x[..., None])
    labels = tf.constant(y)
    ds = tf.data.Dataset.range(len(x))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(x), seed=shuffle_seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(lambda i: (tf.gather(images, i), tf.gather(labels, i)),
                                  num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def build_model(config: VAEConfig) -> VAE:
    """A fresh, compiled model with seeded weights."""
    keras.utils.set_random_seed(config.seed)
    model = VAE(config)
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate))
    return model


def train(config: VAEConfig, dataset: Dataset | None = None, *,
          progress: TrainingProgress | None = None, stop_event: threading.Event | None = None,
          callbacks=(), validate: bool = True, verbose: int = 0) -> TrainResult:
    """Train a fresh model for `config.epochs` epochs, streaming into `progress`.

    Returns the model trained so far also when stopped early (by request or by a NaN loss).
    """
    dataset = dataset or load_dataset(config.dataset)
    progress = progress or TrainingProgress(config)
    steps = math.ceil(len(dataset.x_train) / config.batch_size)
    progress.update(steps_per_epoch=steps)
    model = build_model(config)

    # Fixed images to preview: the same ones every epoch, so changes are the model's.
    rng = np.random.default_rng(12345)
    preview_idx = rng.choice(len(dataset.x_test), PREVIEW_RECONSTRUCTIONS, replace=False)
    latent_idx = rng.choice(len(dataset.x_test), min(PREVIEW_LATENT_POINTS, len(dataset.x_test)),
                            replace=False)
    progress.update(preview_originals=dataset.x_test[preview_idx],
                    preview_labels=dataset.y_test[latent_idx])
    latent_images = dataset.x_test[latent_idx] if config.latent_dim == 2 else None

    snap_idx = snapshot_indices(len(dataset.x_test))
    recorder = SnapshotRecorder(dataset.x_test[snap_idx], dataset.y_test[snap_idx], config.seed)
    all_callbacks = [ProgressCallback(progress, stop_event, dataset.x_test[preview_idx],
                                      latent_images), recorder]
    if config.kl_warmup_epochs > 0:
        all_callbacks.insert(0, KLWarmup(config.beta, config.kl_warmup_epochs, steps))
    all_callbacks += list(callbacks)

    started = time.time()
    history = model.fit(
        make_pipeline(dataset.x_train, dataset.y_train, config.batch_size, config.seed),
        epochs=config.epochs,
        validation_data=(make_pipeline(dataset.x_test, dataset.y_test, 1000, None)
                         if validate else None),
        shuffle=False,  # the pipeline shuffles, seeded
        callbacks=all_callbacks, verbose=verbose)
    if config.style_prior_components and math.isfinite(
            float((history.history.get("loss") or [math.nan])[-1])):
        model.fit_style_prior(dataset.x_train)  # the ex-post style prior (seconds, numpy EM)
    seconds = time.time() - started
    model.history_log = dict(history.history)
    model.training_snapshots = recorder.snapshots()
    snap = progress.snapshot()
    status = "stopped" if snap.status == "stopping" else "done"
    reason = snap.reason or f"Finished {config.epochs} epochs in {seconds:.0f} s."
    progress.update(status=status, reason=reason, finished_at=time.time())
    return TrainResult(model, dict(history.history), status, reason, seconds)
