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

from . import samplers
from .config import VAEConfig
from .data import Dataset, load_dataset
from .history import SnapshotRecorder, TrainingSnapshots, snapshot_indices
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
    status: str = "pending"  # pending|queued -> running -> done | stopped | diverged | failed
    reason: str = ""
    queue_position: int = 0  # while queued: 1 = next to start
    epoch: int = 0  # epochs completed
    batch: int = 0  # batches completed in the current epoch
    steps_per_epoch: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    batches: list = field(default_factory=list)  # dicts: step, epoch, and per-batch loss terms
    epochs: list = field(default_factory=list)  # EpochPreview per finished epoch
    epoch_seconds: list = field(default_factory=list)  # wall seconds of each finished epoch
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

    def add_epoch(self, preview: EpochPreview | None, seconds: float | None = None,
                  epoch: int | None = None):
        """Record a finished epoch: its preview (None when previews are off) and wall time."""
        with self._lock:
            if preview is not None:
                self.epochs.append(preview)
            if seconds is not None:
                self.epoch_seconds.append(seconds)
            self.epoch = preview.epoch if preview is not None else epoch
            self.batch = 0

    def snapshot(self) -> "TrainingProgress":
        """A consistent copy to read without holding the lock (lists copied, arrays shared)."""
        with self._lock:
            snap = copy.copy(self)
            snap.batches = list(self.batches)
            snap.epochs = list(self.epochs)
            snap.epoch_seconds = list(self.epoch_seconds)
            snap._lock = threading.Lock()
            return snap

    @property
    def finished(self) -> bool:
        return self.status in ("done", "stopped", "diverged", "failed")

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
        self._epoch_started = time.perf_counter()

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
                reason=f"Stopped: the loss became {loss} at epoch {self._epoch + 1}, batch {k} "
                       "(training diverged). Try a smaller learning rate.")
            self.model.stop_training = True
        elif self.stop_event is not None and self.stop_event.is_set():
            self.progress.update(status="stopping",
                                 reason=f"Stopped by request at epoch {self._epoch + 1}, batch {k}.")
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if not math.isfinite(float((logs or {}).get("loss", 0.0))):
            return  # nothing worth showing from a diverged model
        preview = None if self.preview_images is None else make_preview(
            self.model, epoch + 1, {k: float(v) for k, v in (logs or {}).items()},
            self.preview_images, self.latent_images)
        # The epoch's own wall time (batches, validation, preview), as the CLI's summary line
        # measures it: what the Train page shows and what bench/app_vs_cli.py compares.
        self.progress.add_epoch(preview, seconds=time.perf_counter() - self._epoch_started,
                                epoch=epoch + 1)


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


class GoodEpochGuard(keras.callbacks.Callback):
    """Remembers the weights after the last epoch whose loss and weights were all finite.

    When the loss turns NaN/Inf, `train` puts these weights back, so a diverged run still hands
    back (and the CLI only ever saves) the last good model, never NaN weights.
    """

    def __init__(self, initial_epoch: int = 0):
        super().__init__()
        self.good_epochs = initial_epoch  # epochs completed by the remembered weights
        self.good_weights = None
        self.diverged_at = None  # (epoch, batch), 1-based, when a loss was not finite
        self._epoch = initial_epoch

    def on_train_begin(self, logs=None):
        self.good_weights = self.model.get_weights()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.diverged_at is None and not math.isfinite(float((logs or {}).get("loss", 0.0))):
            self.diverged_at = (self._epoch + 1, batch + 1)

    def on_epoch_end(self, epoch, logs=None):
        if self.diverged_at is not None:
            return
        weights = self.model.get_weights()
        if all(np.isfinite(w).all() for w in weights):
            self.good_weights, self.good_epochs = weights, epoch + 1
        else:  # the last update broke the weights although the epoch's mean loss looked fine
            self.diverged_at = (epoch + 1, -1)
            self.model.stop_training = True


def all_finite(model) -> bool:
    return all(np.isfinite(w).all() for w in model.get_weights())


@dataclass
class ResumeState:
    """Where an interrupted CLI run left off (see `checkpoints.load_resume_state`)."""

    epochs_done: int
    history: dict  # per-epoch metrics of the epochs done
    weights: list  # model weights after `epochs_done` epochs
    optimizer_variables: list  # the optimizer's variables (step counter, Adam moments)
    seed_states: list  # the sampling layer's random-generator state
    snapshots: "TrainingSnapshots | None" = None  # the epochs' history snapshots so far


@dataclass
class TrainResult:
    model: VAE
    history: dict  # per-epoch metrics, Keras History.history form
    status: str  # done | stopped | diverged
    reason: str
    seconds: float


_shared_tensors: dict = {}  # id(array) -> (weakref to the array, its tf.constant)
_shared_lock = threading.Lock()


def shared_constant(array: np.ndarray):
    """One tf.constant per read-only numpy array, shared by every run that trains on it.

    A `tf.constant` copies its array: without this, every concurrent (or queued) run made its own
    188 MB copy of the MNIST training images. Entries go when their array is garbage-collected.
    """
    import tensorflow as tf
    import weakref

    if array.flags.writeable:  # could change under us: no sharing
        return tf.constant(array)
    key = id(array)
    with _shared_lock:
        entry = _shared_tensors.get(key)
        if entry is not None and entry[0]() is array:
            return entry[1]
        tensor = tf.constant(array)
        _shared_tensors[key] = (weakref.ref(array, lambda _, k=key: _shared_tensors.pop(k, None)),
                                tensor)
        return tensor


def make_pipeline(x, y, batch_size: int, shuffle_seed: int | None, epochs: int | None = None,
                  first_epoch: int = 0):
    """A tf.data pipeline that shuffles indices and gathers whole batches.

    Shuffling 60k indices instead of 60k images keeps the shuffle buffer at 0.5 MB instead of a
    second 188 MB copy of the training set, and one gather per batch replaces 128 per-element
    steps, so batches are assembled off the Python training loop and prefetched.

    With `epochs`, the pipeline holds epochs `first_epoch`..`epochs - 1` back to back (fit it with
    `steps_per_epoch`), and epoch e's order depends only on (shuffle_seed, e): a run resumed at
    epoch e sees exactly the batches an uninterrupted run would have seen.
    """
    import tensorflow as tf

    images = shared_constant(x)
    labels = shared_constant(y)
    n = len(x)

    def gather(i):
        return tf.expand_dims(tf.gather(images, i), -1), tf.gather(labels, i)

    if epochs is not None and shuffle_seed is not None:
        def epoch_batches(e):
            keys = tf.random.stateless_uniform([n], seed=tf.stack([tf.cast(shuffle_seed, tf.int64),
                                                                   e]))
            return tf.data.Dataset.from_tensor_slices(tf.argsort(keys)).batch(batch_size)

        ds = tf.data.Dataset.range(first_epoch, epochs).flat_map(epoch_batches)
    else:
        ds = tf.data.Dataset.range(n)
        if shuffle_seed is not None:
            ds = ds.shuffle(n, seed=shuffle_seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size)
    ds = ds.map(gather, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def build_model(config: VAEConfig) -> VAE:
    """A fresh, compiled model with seeded weights."""
    keras.utils.set_random_seed(config.seed)
    model = VAE(config)
    averaging = dict(use_ema=True, ema_momentum=config.ema_momentum) if config.ema_momentum else {}
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate, beta_1=config.adam_beta1,
                                                  **averaging))
    return model


def restore_state(model: VAE, state: ResumeState):
    """Put a saved run's weights, optimizer slots and sampling RNG back into a compiled model."""
    model.set_weights(state.weights)
    model.optimizer.build(model.trainable_variables)
    variables = model.optimizer.variables
    if len(variables) != len(state.optimizer_variables):
        raise ValueError("The saved optimizer state does not fit this model.")
    for variable, value in zip(variables, state.optimizer_variables):
        variable.assign(value)
    seeds = seed_variables(model)
    for variable, value in zip(seeds, state.seed_states):
        variable.assign(value)


def seed_variables(model: VAE) -> list:
    """The random-generator state variables (not part of `get_weights`)."""
    return [v for v in model.variables if "seed_generator_state" in v.path]


def train(config: VAEConfig, dataset: Dataset | None = None, *,
          progress: TrainingProgress | None = None, stop_event: threading.Event | None = None,
          callbacks=(), validate: bool = True, verbose: int = 0,
          resume: ResumeState | None = None, previews: bool = True) -> TrainResult:
    """Train a fresh model (or continue `resume`) to `config.epochs` epochs, into `progress`.

    `previews=False` (the CLI: nobody watches) skips the per-epoch sample/reconstruction/latent
    previews; the small history snapshots are recorded either way.

    Returns the model trained so far also when stopped early by request. When the loss turns
    NaN/Inf the run stops with status "diverged" and the model is put back to its last epoch with
    finite weights (its initial weights when no epoch finished: `model.epochs_trained` says which).
    """
    dataset = dataset or load_dataset(config.dataset)
    progress = progress or TrainingProgress(config)
    steps = math.ceil(len(dataset.x_train) / config.batch_size)
    progress.update(steps_per_epoch=steps)
    model = build_model(config)
    first_epoch = 0
    if resume is not None:
        restore_state(model, resume)
        first_epoch = resume.epochs_done
        progress.update(epoch=first_epoch)

    # Fixed images to preview: the same ones every epoch, so changes are the model's.
    rng = np.random.default_rng(12345)
    preview_idx = rng.choice(len(dataset.x_test), PREVIEW_RECONSTRUCTIONS, replace=False)
    latent_idx = rng.choice(len(dataset.x_test), min(PREVIEW_LATENT_POINTS, len(dataset.x_test)),
                            replace=False)
    progress.update(preview_originals=dataset.x_test[preview_idx],
                    preview_labels=dataset.y_test[latent_idx])
    latent_images = dataset.x_test[latent_idx] if config.latent_dim == 2 else None

    snap_idx = snapshot_indices(len(dataset.x_test))
    recorder = SnapshotRecorder(dataset.x_test[snap_idx], dataset.y_test[snap_idx], config.seed,
                                earlier=resume.snapshots if resume is not None else None)
    guard = GoodEpochGuard(first_epoch)
    all_callbacks = [guard, recorder,  # the recorder first: its time counts in the epoch's
                     ProgressCallback(progress, stop_event,
                                      dataset.x_test[preview_idx] if previews else None,
                                      latent_images)]
    if config.kl_warmup_epochs > 0:
        all_callbacks.insert(0, KLWarmup(config.beta, config.kl_warmup_epochs, steps))
    all_callbacks += list(callbacks)

    started = time.time()
    earlier = {k: list(v) for k, v in (resume.history if resume else {}).items()}
    if first_epoch >= config.epochs:  # nothing left to do
        model.history_log = earlier
        progress.update(status="done", reason=f"All {config.epochs} epochs were already done.",
                        finished_at=time.time())
        return TrainResult(model, earlier, "done", progress.reason, 0.0)
    fit = model.fit(
        make_pipeline(dataset.x_train, dataset.y_train, config.batch_size, config.seed,
                      epochs=config.epochs, first_epoch=first_epoch),
        epochs=config.epochs, initial_epoch=first_epoch, steps_per_epoch=steps,
        validation_data=(make_pipeline(dataset.x_test, dataset.y_test, 1000, None)
                         if validate else None),
        shuffle=False,  # the pipeline shuffles, seeded
        callbacks=all_callbacks, verbose=verbose)
    if ((config.style_prior_components or config.class_matched_styles)
            and guard.diverged_at is None
            and math.isfinite(float((fit.history.get("loss") or [math.nan])[-1]))):
        samplers.fit(model, dataset.x_train)  # the ex-post style priors (seconds, numpy)
    seconds = time.time() - started
    new = dict(fit.history)
    model.training_snapshots = recorder.snapshots()
    snap = progress.snapshot()
    status = "stopped" if snap.status == "stopping" else "done"
    reason = snap.reason or (
        f"Finished epochs {first_epoch + 1}-{config.epochs} (of {config.epochs}) in "
        f"{seconds:.0f} s." if first_epoch else
        f"Finished {config.epochs} epochs in {seconds:.0f} s.")
    if guard.diverged_at is not None or not all_finite(model):
        status = "diverged"
        model.set_weights(guard.good_weights)
        new = {k: v[:guard.good_epochs - first_epoch] for k, v in new.items()}
        epoch = (guard.diverged_at or (guard.good_epochs + 1, -1))[0]
        reason = (f"Training diverged: the loss became NaN or infinite in epoch {epoch}. "
                  "Try a smaller learning rate. "
                  + (f"The model keeps the weights of epoch {guard.good_epochs}, the last good one."
                     if guard.good_epochs else "No epoch finished with usable weights."))
    history = {k: earlier.get(k, []) + list(v) for k, v in new.items()}
    for k, v in earlier.items():
        history.setdefault(k, v)
    model.history_log = history
    progress.update(status=status, reason=reason, finished_at=time.time())
    return TrainResult(model, history, status, reason, seconds)


class EpochCheckpoint(keras.callbacks.Callback):
    """After every complete epoch with finite loss and weights, rewrite the checkpoint folder.

    The folder is replaced atomically (see `checkpoints.save_checkpoint`), so a kill at any moment
    leaves the last complete epoch loadable. It carries `training_state.npz` (optimizer, RNG,
    settings) so `train --resume` can continue exactly; the finished run's final save drops it.
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


class EpochSummary(keras.callbacks.Callback):
    """One readable line per epoch on stdout, whatever Keras's own progress bar does."""

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
