import threading
import time

import keras
import numpy as np

from vae_core import samplers
import pytest

from conftest import synthetic_dataset
from vae_core.config import VAEConfig
from vae_core.data import Dataset
from vae_core.jobs import JobSlots
from vae_core.training import TrainingProgress, epoch_style_seed, train


def tiny(**kw):
    base = dict(latent_dim=2, hidden=(32,), batch_size=64, epochs=2, learning_rate=3e-3)
    return VAEConfig(**{**base, **kw})


class StopAfter(keras.callbacks.Callback):
    def __init__(self, event, batches):
        super().__init__()
        self.event, self.batches, self.seen = event, batches, 0

    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.seen == self.batches:
            self.event.set()


def test_progress_streams_batches_and_epoch_previews(tiny_data):
    progress = TrainingProgress(tiny(conditional=True))
    result = train(progress.config, tiny_data, progress=progress)
    snap = progress.snapshot()
    assert result.status == "done" and snap.status == "done"
    assert snap.steps_per_epoch == 8 and len(snap.batches) == 16
    assert {"loss", "reconstruction_loss", "kl_loss", "classification_loss"} <= set(snap.batches[0])
    assert [p.epoch for p in snap.epochs] == [1, 2]
    first, last = snap.epochs
    assert first.samples.shape == (10, 28, 28) and first.reconstructions.shape == (8, 28, 28)
    assert first.latent_means.shape == (128, 2)  # all test images of the tiny set
    assert first.style_seed != last.style_seed == epoch_style_seed(progress.config, 2)
    assert "val_loss" in last.metrics
    assert last.metrics["loss"] < first.metrics["loss"]
    assert result.history["loss"] == [p.metrics["loss"] for p in snap.epochs]


def test_training_records_history_snapshots(tiny_data):
    result = train(tiny(epochs=3, latent_dim=3), tiny_data, validate=False)
    snaps = result.model.training_snapshots
    assert list(snaps.epochs) == [1, 2, 3] and len(snaps) == 3
    assert snaps.points.shape == (3, 128, 2) and snaps.labels.shape == (128,)  # all 128 test
    assert snaps.samples.shape == (3, 10, 28, 28) and snaps.samples.dtype == np.uint8
    assert snaps.is_pca and np.all(snaps.explained.sum(axis=1) <= 1.0001)
    assert np.all(np.isfinite(snaps.points))
    # The same fixed style every epoch: the samples change because the model does.
    assert not np.array_equal(snaps.samples[0], snaps.samples[-1])


def test_2d_snapshots_are_the_latent_itself_and_pca_signs_do_not_flip():
    from vae_core.history import map_2d

    means = np.random.default_rng(0).normal(size=(200, 2)).astype(np.float32)
    points, explained = map_2d(means)
    np.testing.assert_array_equal(points, means)
    assert list(explained) == [1.0, 0.0]
    rng = np.random.default_rng(1)
    wide = rng.normal(size=(300, 6)) * np.array([5, 3, 1, 0.5, 0.2, 0.1])
    first, _ = map_2d(wide)
    for _ in range(5):  # nearby epochs: small changes must never mirror an axis
        wide = wide + rng.normal(scale=0.05, size=wide.shape)
        again, _ = map_2d(wide, first)
        assert np.corrcoef(first[:, 0], again[:, 0])[0, 1] > 0.9
        assert np.corrcoef(first[:, 1], again[:, 1])[0, 1] > 0.9
        first = again


def test_per_batch_values_are_recovered_from_running_means(tiny_data):
    progress = TrainingProgress(tiny(epochs=1))
    train(progress.config, tiny_data, progress=progress, validate=False)
    losses = [b["loss"] for b in progress.snapshot().batches]
    # The mean of the per-batch values equals Keras's epoch mean (all batches are full here).
    assert np.mean(losses) == pytest.approx(progress.snapshot().epochs[0].metrics["loss"], rel=1e-4)


def test_stop_signal_stops_within_one_batch(tiny_data):
    stop = threading.Event()
    progress = TrainingProgress(tiny(epochs=5))
    result = train(progress.config, tiny_data, progress=progress, stop_event=stop,
                   callbacks=[StopAfter(stop, 3)], validate=False)
    # The event was set after batch 3; training noticed at the end of batch 4 at the latest.
    assert len(progress.snapshot().batches) <= 4
    assert result.status == "stopped" and "by request" in result.reason
    assert result.model.epochs_trained == 1  # not the 5 planned
    assert result.model.generate([0, 1], seed=0).shape == (2, 28, 28)  # still usable


def test_nan_loss_stops_cleanly_with_a_reason(tiny_data):
    x = tiny_data.x_train.copy()
    x[:] = np.nan
    broken = Dataset("mnist", x, tiny_data.y_train, tiny_data.x_test, tiny_data.y_test)
    progress = TrainingProgress(tiny(epochs=3))
    result = train(progress.config, broken, progress=progress)
    assert result.status == "diverged" and progress.snapshot().status == "diverged"
    assert "nan" in result.reason.lower() and "learning rate" in result.reason
    assert "epoch 1" in result.reason and "No epoch finished" in result.reason
    assert len(progress.snapshot().batches) == 1
    assert result.model.epochs_trained == 0
    assert all(np.isfinite(w).all() for w in result.model.get_weights())  # initial, not NaN


class PoisonAt(keras.callbacks.Callback):
    """Makes one weight NaN at the start of a given (0-based) epoch: a run that diverges there."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            w = self.model.trainable_weights[0]
            w.assign(np.full(w.shape, np.nan, np.float32))


@pytest.mark.parametrize("averaging", [0.0, 0.9])  # the average has NaN steps in it too
def test_nan_in_a_later_epoch_keeps_the_last_good_epoch(tiny_data, averaging):
    progress = TrainingProgress(tiny(epochs=4, ema_momentum=averaging))
    result = train(progress.config, tiny_data, progress=progress, callbacks=[PoisonAt(2)],
                   validate=False)
    assert result.status == "diverged"
    assert "epoch 3" in result.reason and "weights of epoch 2" in result.reason
    assert result.model.epochs_trained == 2 and len(result.history["loss"]) == 2
    assert all(np.isfinite(w).all() for w in result.model.get_weights())
    assert np.isfinite(result.model.generate([0, 1], seed=0)).all()  # still usable


class KeepStateAfter(keras.callbacks.Callback):
    """What the CLI's per-epoch checkpoint keeps, taken inside the run after `epochs` epochs."""

    def __init__(self, epochs):
        super().__init__()
        self.epochs, self.parts = epochs, None

    def on_epoch_end(self, epoch, logs=None):
        from vae_core.training import seed_variables

        if epoch + 1 == self.epochs:
            optimizer = self.model.optimizer
            self.parts = dict(weights=self.model.get_weights(),
                              optimizer_variables=[v.numpy() for v in optimizer.variables],
                              seed_states=[v.numpy() for v in seed_variables(self.model)])


@pytest.mark.parametrize("optimizer", [{}, {"ema_momentum": 0.9},
                                       {"adam_beta1": 0.5}])
def test_resumed_run_matches_an_uninterrupted_one(tiny_data, optimizer):
    from vae_core.training import ResumeState

    config = tiny(epochs=3, kl_warmup_epochs=2, **optimizer)
    keep = KeepStateAfter(2)
    full = train(config, tiny_data, validate=False, callbacks=[keep])
    state = ResumeState(epochs_done=2, history={k: v[:2] for k, v in full.history.items()},
                        **keep.parts)
    resumed = train(config, tiny_data, validate=False, resume=state)
    assert resumed.status == "done" and resumed.model.epochs_trained == 3
    assert len(resumed.history["loss"]) == 3
    assert resumed.history["loss"][:2] == full.history["loss"][:2]
    assert resumed.history["loss"][2] == pytest.approx(full.history["loss"][2], rel=1e-4)
    for a, b in zip(resumed.model.get_weights(), full.model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_adam_beta1_reaches_the_optimizer():
    from vae_core.training import build_model

    assert float(build_model(tiny(adam_beta1=0.5)).optimizer.beta_1) == 0.5
    assert float(build_model(tiny()).optimizer.beta_1) == 0.9


class RecordStepWeights(keras.callbacks.Callback):
    """The raw trainable weights after every step, to recompute their average independently."""

    def __init__(self):
        super().__init__()
        self.steps = []

    def on_train_batch_end(self, batch, logs=None):
        self.steps.append([v.numpy().astype(np.float64) for v in self.model.trainable_weights])


def test_weight_averaging_finishes_on_the_averaged_weights(tiny_data):
    momentum = 0.9
    keep, record = KeepStateAfter(2), RecordStepWeights()
    result = train(tiny(ema_momentum=momentum), tiny_data, validate=False,
                   callbacks=[keep, record])
    assert len(record.steps) == 16
    expected = record.steps[0]  # the average starts at the first step's weights
    for step in record.steps[1:]:
        expected = [momentum * a + (1 - momentum) * w for a, w in zip(expected, step)]
    for weight, average in zip(result.model.trainable_weights, expected):
        np.testing.assert_allclose(weight.numpy(), average, rtol=1e-4, atol=1e-6)
    final = result.model.get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(final, keep.parts["weights"]))
    plain = train(tiny(), tiny_data, validate=False)  # the raw run itself is unchanged
    for a, b in zip(plain.model.get_weights(), keep.parts["weights"]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_kl_warmup_ramps_the_kl_weight(tiny_data):
    config = tiny(epochs=1, kl_warmup_epochs=2, beta=2.0)
    result = train(config, tiny_data, validate=False)
    assert result.model.epochs_trained == 1
    # Last batch of epoch 1 of a 2-epoch ramp: weight = 2.0 * (0 + 7/8) / 2.
    assert float(result.model.kl_weight.numpy()) == pytest.approx(2.0 * 7 / 8 / 2)


def test_seconds_left_estimate(tiny_data):
    progress = TrainingProgress(tiny(epochs=1))
    assert progress.seconds_left() is None
    progress.update(steps_per_epoch=10, started_at=time.time() - 4, batch=5)
    assert progress.seconds_left() == pytest.approx(4.0, abs=0.5)


def test_background_job_is_bounded_and_stoppable():
    data = synthetic_dataset(n_train=4096, n_test=64)
    slots = JobSlots(limit=1)
    job = slots.try_start(tiny(epochs=50, batch_size=32), data)
    assert job is not None
    assert slots.try_start(tiny(), data) is None  # the one slot is taken: visitor must wait
    deadline = time.time() + 60
    while len(job.progress.snapshot().batches) < 3 and time.time() < deadline:
        time.sleep(0.05)
    job.stop()
    assert job.join(timeout=30)
    assert job.progress.snapshot().status == "stopped"
    assert job.result is not None and job.result.status == "stopped"
    assert slots.active == 0 and slots.try_start(tiny(epochs=1), data) is not None


def test_a_sweep_trains_its_runs_in_turn_and_lets_a_waiting_visitor_in_between(tiny_data):
    slots = JobSlots(limit=1, queue=2)
    sweep = slots.try_start([tiny(epochs=1, beta=b) for b in (0.0, 1.0)], tiny_data)
    other = slots.try_start(tiny(epochs=1), tiny_data)  # waits for the slot
    assert sweep.join(timeout=120) and other.join(timeout=120)
    assert [r.status for r in sweep.results] == ["done", "done"]
    assert [r.model.config.beta for r in sweep.results] == [0.0, 1.0]
    first, second = (run.snapshot().started_at for run in sweep.runs)
    assert first < other.progress.snapshot().started_at < second  # back in line after each run
    assert slots.active == slots.waiting == 0


def test_stopping_a_sweep_cancels_its_later_runs(tiny_data):
    slots = JobSlots(limit=1)
    sweep = slots.try_start([tiny(epochs=30, batch_size=32), tiny(epochs=1)], tiny_data)
    deadline = time.time() + 60
    while not sweep.progress.snapshot().batches and time.time() < deadline:
        time.sleep(0.05)
    sweep.stop()
    assert sweep.join(timeout=30)
    assert sweep.results[0].status == "stopped" and sweep.results[1] is None
    assert sweep.runs[1].snapshot().status == "stopped"
    assert slots.active == slots.waiting == 0


def test_job_failure_becomes_a_message_not_a_crash(tiny_data):
    slots = JobSlots(limit=1)
    bad = Dataset("mnist", tiny_data.x_train[:, :10], tiny_data.y_train,
                  tiny_data.x_test, tiny_data.y_test)  # wrong image shape
    job = slots.try_start(tiny(epochs=1), bad)
    assert job.join(timeout=60)
    snap = job.progress.snapshot()
    assert snap.status == "failed" and "Training failed" in snap.reason
    assert slots.active == 0


def test_epoch_seconds_are_recorded_with_or_without_previews(tiny_data):
    for previews in (True, False):
        progress = TrainingProgress(tiny(epochs=2))
        train(progress.config, tiny_data, progress=progress, validate=False, previews=previews)
        snap = progress.snapshot()
        assert len(snap.epoch_seconds) == 2 and all(s > 0 for s in snap.epoch_seconds)
        assert snap.epoch == 2 and len(snap.epochs) == (2 if previews else 0)


def test_the_sharp_recipe_trains_streams_its_consistency_loss_and_fits_the_prior(tiny_data):
    progress = TrainingProgress(tiny(conditional=True, encoder_conditional=True, latent_dim=3,
                                     consistency_weight=1.0, style_prior_components=3,
                                     epochs=1))
    result = train(progress.config, tiny_data, progress=progress)
    assert result.status == "done"
    assert "consistency_loss" in progress.snapshot().batches[0]
    assert "val_consistency_loss" in result.history
    assert samplers.fitted_mixture(result.model) is not None  # fitted at the end of training
    assert samplers.available(result.model)[0] == "mixture"


def test_class_matched_styles_alone_are_fitted_at_the_end_of_training(tiny_data):
    result = train(tiny(conditional=True, latent_dim=3, class_matched_styles=True, epochs=1),
                   tiny_data, validate=False)
    assert samplers.fitted_mixture(result.model) is None and samplers.fitted_class_styles(result.model) is not None
    assert samplers.available(result.model) == ["class", "normal"]
