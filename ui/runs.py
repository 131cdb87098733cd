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

from .catalog import ACTIVE, COMPARE, TrainedModel, trained_models


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
            job.results = [None] * len(job.results)
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


def start_training(configs) -> bool:
    """Start (or queue) a background run, or a sweep of runs (a list of configs, trained one
    after another), for this visitor; False when slots and queue are full.

    The room check comes first: a visitor turned away costs no memory at all.
    """
    configs = list(configs) if isinstance(configs, (list, tuple)) else [configs]
    slots = job_slots()
    if not slots.has_room():
        return False
    data = training_data(configs[0].dataset)  # fails here, in the page, when data is missing
    for config in configs:
        if config.dataset != configs[0].dataset:
            raise ConfigError("A sweep trains on one dataset: vary another setting.")
        if config.batch_size > len(data.x_train):
            raise ConfigError(f"The batch size ({config.batch_size}) is larger than the "
                              f"{len(data.x_train):,} training images: choose a smaller one.")
    job = slots.try_start(configs, data)
    if job is None:
        return False
    st.session_state["job"] = job
    _session_jobs().append(job)
    return True


def collect_finished_runs() -> list[TrainedModel]:
    """Add the session's finished runs (done or stopped) to its models, once each, and return
    the new entries. A single run becomes the active model; a finished sweep opens together on
    the Compare page."""
    job = current_job()
    if job is None:
        return []
    new = []
    for run, result in enumerate(job.results):
        if result is None or finished_entry(job, run) is not None:
            continue
        if result.status == "diverged" and result.model.epochs_trained == 0:
            continue  # no epoch finished with usable weights: nothing worth keeping
        status = {"stopped": "stopped early",
                  "diverged": f"diverged, epoch {result.model.epochs_trained} kept"}.get(
            result.status, "trained here")
        config = job.configs[run]
        swept = sweep_values(job.configs).get(run)
        entry = TrainedModel(
            key=f"trained-{uuid.uuid4().hex[:8]}",
            label=f"#{len(trained_models()) + 1} {DISPLAY_NAMES[config.dataset].split()[0]} · "
                  f"{config.arch.upper()}, {config.latent_dim}-D"
                  + (f", {swept}" if swept else "") + f" ({status})",
            model=result.model, job=job, run=run)
        trained_models()[entry.key] = entry
        new.append(entry)
    if new and not job.is_sweep:
        st.session_state[ACTIVE] = new[-1].key
    if new and job.is_sweep and not job.running:
        st.session_state[COMPARE] = [e.key for e in trained_models().values() if e.job is job]
    return new


def sweep_values(configs) -> dict[int, str]:
    """Run index -> "setting = value" for the settings a sweep varies (empty for one run)."""
    if len(configs) < 2:
        return {}
    varied = list(dict.fromkeys(f for c in configs[1:] for f in configs[0].differences(c)))
    return {i: ", ".join(f"{f} = {_shown(getattr(c, f))}" for f in varied)
            for i, c in enumerate(configs)}


def _shown(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple) else f"{value:g}" if isinstance(
        value, float) else str(value)


def finished_entry(job: TrainingJob, run: int | None = None) -> TrainedModel | None:
    """The model a job's run (default: its current one) added to this session, if any."""
    run = job.current if run is None else run
    return next((e for e in trained_models().values() if e.job is job and e.run == run), None)


def checkpoint_zip(entry: TrainedModel) -> bytes:
    """The trained model as a checkpoint zip (saved to a scratch folder, zipped, removed)."""
    if "zip" not in entry.extras:
        scratch = Path(tempfile.mkdtemp(prefix="vae-lab-"))
        try:
            path = vae_core.save_checkpoint(
                entry.model, scratch / "vae_lab_model", entry.result.history,
                card={"trained_in": "VAE Lab", "status": entry.result.status,
                      "training_seconds": round(entry.result.seconds, 1)})
            entry.extras["zip"] = vae_core.checkpoint_zip(path)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return entry.extras["zip"]
