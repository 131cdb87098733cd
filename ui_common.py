"""What every VAE Lab page shares: models, training slots, errors, pictures.

The pages stay thin views; this is the one place that knows where models come from
(shipped checkpoints, or this visitor's training runs), how they are cached, and how a
background training job is kept in the visitor's session. All real work is in `vae_core`.

Shared (globally cached) models are only used through their thread-safe inference methods
and are never trained.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import streamlit as st

import vae_core
from vae_core import images, latent
from vae_core.data import DISPLAY_NAMES, Dataset
from vae_core.jobs import JobSlots, TrainingJob

ROOT = Path(__file__).resolve().parent
log = logging.getLogger("vae_lab")

# Shipped checkpoint folders (in display order) and what the model picker calls them.
SHIPPED = {
    "mnist_conditional": "MNIST · digit-conditioned",
    "mnist_2d_kl_on": "MNIST · 2-D latent, KL on",
    "mnist_2d_kl_off": "MNIST · 2-D latent, KL off",
    "fashion_conditional": "Fashion · garment-conditioned",
    "fashion_2d_kl_on": "Fashion · 2-D latent, KL on",
}
DEFAULT_MODEL = "mnist_conditional"
KL_PAIR = ("mnist_2d_kl_on", "mnist_2d_kl_off")

ACTIVE = "active_model"  # session-state key of the sidebar's model picker
LATENT_POINTS = 2000  # test images shown on latent scatters


# ---- Errors ------------------------------------------------------------------------------

USER_ERRORS = (vae_core.ConfigError, vae_core.DataUnavailableError, vae_core.CheckpointError)


@contextlib.contextmanager
def friendly_errors():
    """Show problems as messages, never as tracebacks.

    Settings, data and checkpoint problems are the visitor's to fix, so their message is shown
    as it is. Anything else is a bug: logged with its traceback for us, a calm note for them.
    Streamlit's own rerun/stop signals are BaseExceptions and pass through untouched.
    """
    try:
        yield
    except USER_ERRORS as e:
        st.error(str(e), icon=":material/error:")
    except Exception:
        log.exception("Unexpected error while drawing the page")
        st.error("Something unexpected went wrong while drawing this part of the page. "
                 "Try again, or pick another model in the sidebar; the details are in the "
                 "server log.", icon=":material/error:")


# ---- Models ------------------------------------------------------------------------------

def checkpoint_dir() -> Path:
    """Where shipped checkpoints live; VAE_LAB_CHECKPOINTS overrides (tests, development)."""
    return Path(os.environ.get("VAE_LAB_CHECKPOINTS") or ROOT / "checkpoints")


@st.cache_resource(show_spinner="Loading model…")
def _load_checkpoint(path: str) -> vae_core.VAE:
    return vae_core.load_checkpoint(path)


def shipped_model(name: str) -> vae_core.VAE | None:
    """A shipped model, loaded once per process and shared read-only; None if not shipped."""
    path = checkpoint_dir() / name
    return _load_checkpoint(str(path)) if vae_core.is_checkpoint(path) else None


@dataclass
class TrainedModel:
    """A model this visitor trained (or uploaded); it lives in their session only."""

    key: str
    label: str
    model: vae_core.VAE
    job: TrainingJob | None = None  # None for a model loaded from an uploaded zip
    evaluation: dict | None = None
    extras: dict = field(default_factory=dict)


def trained_models() -> dict[str, TrainedModel]:
    return st.session_state.setdefault("trained_models", {})


def model_choices() -> dict[str, str]:
    """Picker key -> label: shipped checkpoints that exist, then this session's models."""
    choices = {name: label for name, label in SHIPPED.items()
               if vae_core.is_checkpoint(checkpoint_dir() / name)}
    choices.update({key: entry.label for key, entry in trained_models().items()})
    return choices


def active_key() -> str | None:
    return st.session_state.get(ACTIVE)


def get_model(key: str | None) -> vae_core.VAE | None:
    if key in trained_models():
        return trained_models()[key].model
    if key in SHIPPED:
        return shipped_model(key)
    return None


def active_model() -> vae_core.VAE | None:
    return get_model(active_key())


def no_model_note():
    st.info("No model is available yet: the shipped checkpoints are missing. Train one on "
            "the Train page, and it will appear in the sidebar.", icon=":material/info:")
    st.page_link("app_pages/train.py", label="Go to Train", icon=":material/model_training:")


def require_active_model() -> vae_core.VAE:
    """The active model, or a note saying how to get one (and the page stops there)."""
    model = active_model()
    if model is None:
        no_model_note()
        st.stop()
    return model


def use_model(key: str):
    """Make `key` the active model (a button callback: runs before the sidebar is drawn)."""
    st.session_state[ACTIVE] = key


def sidebar():
    """The model picker and dataset, identical on every page."""
    collect_finished_job()
    choices = model_choices()
    with st.sidebar:
        if not choices:
            st.warning("No models found in the checkpoints folder. Train one on the Train page.",
                       icon=":material/warning:")
            return
        if active_key() not in choices:
            st.session_state[ACTIVE] = DEFAULT_MODEL if DEFAULT_MODEL in choices else next(
                iter(choices))
        st.selectbox("Active model", list(choices), format_func=choices.get, key=ACTIVE,
                     help="The model the Generate and Latent pages use. Shipped models come "
                          "with the app; models you train here are added to this list.")
        with friendly_errors():
            model = active_model()
            if model is not None:
                st.caption(f"**Dataset:** {DISPLAY_NAMES[model.config.dataset]}  \n"
                           f"{describe(model.config, model.epochs_trained)}")
        checkpoint_uploader()


UPLOAD = "upload_checkpoint"  # session-state key of the uploader widget


def checkpoint_uploader():
    """Bring back a model downloaded from the Train page (a checkpoint zip) into this session."""
    with st.expander("Load a checkpoint", icon=":material/upload:"):
        st.file_uploader("Checkpoint zip", type="zip", key=UPLOAD, on_change=_load_upload,
                         help="A zip downloaded from the Train page. It is loaded safely (no "
                              "code runs) and appears in the model list above.")
        problem = st.session_state.get("upload_problem")
        if problem:
            st.error(problem, icon=":material/error:")


def _load_upload():
    """Uploader callback: runs before the picker is drawn, so it may select the new model."""
    file = st.session_state.get(UPLOAD)
    st.session_state["upload_problem"] = None
    if file is None:
        return
    try:
        model = vae_core.load_checkpoint_zip(file.getvalue())
    except vae_core.CheckpointError as e:
        st.session_state["upload_problem"] = f"Could not load {file.name}: {e}"
        return
    key = f"uploaded-{uuid.uuid4().hex[:8]}"
    label = (f"{file.name.removesuffix('.zip')} · {DISPLAY_NAMES[model.config.dataset].split()[0]}"
             f", {model.config.latent_dim}-D (uploaded)")
    trained_models()[key] = TrainedModel(key=key, label=label, model=model)
    st.session_state[ACTIVE] = key


def describe(config: vae_core.VAEConfig, epochs: int | None = None) -> str:
    """One line about a model; `epochs` = epochs trained, when known (else the planned ones)."""
    kind = "conditional" if config.conditional else "unconditional"
    kl = "KL off" if config.beta == 0 else f"β = {config.beta:g}"
    return (f"{config.arch.upper()}, {kind}, {config.latent_dim}-D style latent, {kl}, "
            f"{epochs or config.epochs} epochs")


def class_names(model: vae_core.VAE) -> tuple[str, ...]:
    return vae_core.CLASS_NAMES[model.config.dataset]


# ---- Training jobs -----------------------------------------------------------------------

def _job_limit() -> int:
    try:
        return max(1, int(os.environ.get("VAE_LAB_MAX_TRAINING_JOBS", "1")))
    except ValueError:
        return 1


@st.cache_resource
def job_slots() -> JobSlots:
    """One bound for the whole process: every visitor shares these CPU cores."""
    return JobSlots(_job_limit())


def _stop_jobs(jobs: list):
    for job in jobs:
        job.stop()


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
    """Start a background run for this visitor; False when every training slot is taken."""
    data = training_data(config.dataset)  # fails here, in the page, when the data is missing
    job = job_slots().try_start(config, data)
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
    n = len(trained_models()) + 1
    status = "stopped early" if job.result.status == "stopped" else "trained here"
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


# ---- Latent views ------------------------------------------------------------------------

@dataclass(frozen=True)
class LatentView:
    """Encoded test images on a plane: 2-D latents as they are, larger ones through PCA."""

    points: np.ndarray  # (n, 2)
    labels: np.ndarray  # (n,)
    projection: latent.Projection
    std: float  # spread of the encoded means (all latent dims pooled)

    def extent(self, quantile: float = 0.995) -> float:
        """A symmetric axis limit that holds nearly all points."""
        return float(np.quantile(np.abs(self.points), quantile))


@st.cache_resource(show_spinner="Encoding test images…", max_entries=32)
def _latent_view(model_key: str, _model: vae_core.VAE, n: int) -> LatentView:
    data = vae_core.load_dataset(_model.config.dataset)
    idx = np.random.default_rng(0).choice(len(data.x_test), min(n, len(data.x_test)),
                                          replace=False)
    means = latent.encode_means(_model, data.x_test[idx])
    projection = latent.fit_projection(means)
    return LatentView(projection.to_2d(means), data.y_test[idx], projection,
                      float(means.std()))


def latent_view(model_key: str, n: int = LATENT_POINTS) -> LatentView:
    """The cached latent view of a model in the picker (raises for a 1-D latent)."""
    cache_key = model_key if model_key in trained_models() else str(checkpoint_dir() / model_key)
    return _latent_view(cache_key, get_model(model_key), n)


def selected_point(event) -> tuple[float, float] | None:
    """The latent point a scatter selection picks: a box's centre, or a clicked point."""
    selection = getattr(event, "selection", None) or {}
    for box in selection.get("box") or []:
        xs, ys = box.get("x") or [], box.get("y") or []
        if len(xs) == 2 and len(ys) == 2:
            return float(np.mean(xs)), float(np.mean(ys))
    points = selection.get("points") or []
    if points:
        return float(points[0]["x"]), float(points[0]["y"])
    return None


# ---- Pictures ----------------------------------------------------------------------------

def crisp_images():
    """Ask the browser to scale digit images by repeating pixels, never by blurring them."""
    st.html("<style>[data-testid='stImage'] img, [data-testid='stImageContainer'] img "
            "{image-rendering: pixelated;}</style>")


def show(image, caption: str | None = None, scale: int = 3, width="content"):
    """Show a [0, 1] greyscale picture, upscaled by whole pixels (crisp)."""
    st.image(images.to_uint8(image, scale), caption=caption, width=width)


def show_grid(grid, caption: str | None = None, scale: int = 3, cols: int | None = None,
              width="content"):
    """Show images (N, 28, 28) or (rows, cols, 28, 28) tiled into one picture."""
    show(images.tile(grid, cols=cols), caption, scale, width)


def new_seed() -> int:
    return random.randrange(100_000)
