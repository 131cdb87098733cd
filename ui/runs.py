"""This visitor's background training run, and the process-wide bound on concurrent runs.

The job's thread never touches Streamlit; the page reads `job.progress.snapshot()`.

Memory (one process serves every visitor, 2.7 GB on Community Cloud): a Start first checks for
room in the training slots and queue, before anything is loaded; every run shares the one
read-only copy of the data (`vae_core.load_dataset`, loaded once under a lock) and its tensor;
a session's jobs are stopped and its models dropped when the session ends.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import streamlit as st

import vae_core
from vae_core.config import ConfigError
from vae_core.data import DISPLAY_NAMES, Dataset
from vae_core.jobs import JobSlots, TrainingJob

from .catalog import TrainedModel, trained_models


def _env_int(name: str, default: int, lowest: int) -> int:
    try:
        return max(lowest, int(os.environ.get(name, str(default))))
    except ValueError:
        return default


@st.cache_resource(max_entries=4)
def _slots(limit: int, queue: int) -> JobSlots:
    return JobSlots(limit, queue)


def job_slots() -> JobSlots:
    """One bound for the whole process: every visitor shares these CPU cores and this memory.

    VAE_LAB_MAX_TRAINING_JOBS runs train at once (default 1); VAE_LAB_TRAINING_QUEUE more wait
    in line (default 8); beyond that a visitor is asked to try again later.
    """
    return _slots(_env_int("VAE_LAB_MAX_TRAINING_JOBS", 1, 1),
                  _env_int("VAE_LAB_TRAINING_QUEUE", 8, 0))


def _stop_jobs(jobs: list):
    """Session ended: stop its runs (queued ones leave the queue) and let go of their models."""
    for job in jobs:
        job.stop()
    for job in jobs:
        if not job.running:
            job.result = None
    jobs.clear()


@st.cache_resource(scope="session", on_release=_stop_jobs)
def _session_jobs() -> list:
    """Jobs this session started; stopped when the session ends, so none outlives its viewer."""
    return []


def training_data(name: str) -> Dataset:
    """The training data; VAE_LAB_TRAIN_SUBSET=n trains on the first n images (tests, demos)."""
    data = vae_core.load_dataset(name)
    n = int(os.environ.get("VAE_LAB_TRAIN_SUBSET") or 0)
    if n > 0:
        data = data.head(n, n)
    return data


def current_job() -> TrainingJob | None:
    return st.session_state.get("job")


def start_training(config: vae_core.VAEConfig) -> bool:
    """Start (or queue) a background run for this visitor; False when slots and queue are full.

    The room check comes first: a visitor turned away costs no memory at all.
    """
    slots = job_slots()
    if not slots.has_room():
        return False
    data = training_data(config.dataset)  # fails here, in the page, when the data is missing
    if config.batch_size > len(data.x_train):
        raise ConfigError(f"The batch size ({config.batch_size}) is larger than the "
                          f"{len(data.x_train):,} training images: choose a smaller one.")
    job = slots.try_start(config, data)
    if job is None:
        return False
    st.session_state["job"] = job
    _session_jobs().append(job)
    return True


def collect_finished_job() -> TrainedModel | None:
    """Add the session's finished run (done or stopped) to its models, once."""
    job = current_job()
    if job is None or job.running or job.result is None:
        return None
    for entry in trained_models().values():
        if entry.job is job:
            return entry
    if job.result.status == "diverged" and job.result.model.epochs_trained == 0:
        return None  # no epoch finished with usable weights: nothing worth keeping
    n = len(trained_models()) + 1
    status = {"stopped": "stopped early",
              "diverged": f"diverged, epoch {job.result.model.epochs_trained} kept"}.get(
        job.result.status, "trained here")
    entry = TrainedModel(
        key=f"trained-{uuid.uuid4().hex[:8]}",
        label=f"#{n} {DISPLAY_NAMES[job.config.dataset].split()[0]} · {job.config.arch.upper()}, "
              f"{job.config.latent_dim}-D ({status})",
        model=job.result.model, job=job)
    trained_models()[entry.key] = entry
    return entry


def finished_entry(job: TrainingJob) -> TrainedModel | None:
    return next((e for e in trained_models().values() if e.job is job), None)


def evaluation(entry: TrainedModel) -> dict:
    """Test-set metrics of a trained model, computed once."""
    if entry.evaluation is None:
        with st.spinner("Evaluating on the test images…"):
            entry.evaluation = vae_core.evaluate(entry.model, entry.job.dataset)
    return entry.evaluation


def checkpoint_zip(entry: TrainedModel) -> bytes:
    """The trained model as a checkpoint zip (saved to a scratch folder, zipped, removed)."""
    if "zip" not in entry.extras:
        scratch = Path(tempfile.mkdtemp(prefix="vae-lab-"))
        try:
            path = vae_core.save_checkpoint(
                entry.model, scratch / "vae_lab_model", entry.job.result.history,
                card={"trained_in": "VAE Lab", "status": entry.job.result.status,
                      "training_seconds": round(entry.job.result.seconds, 1)})
            entry.extras["zip"] = vae_core.checkpoint_zip(path)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return entry.extras["zip"]
