"""Where the pages' models come from: shipped checkpoints (shared, read-only) or this visitor's.

Shared (globally cached) models are only used through `vae_core`'s thread-safe inference
methods and are never trained; a visitor's own models live in their session.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import streamlit as st

import vae_core
from vae_core.jobs import TrainingJob

ROOT = Path(__file__).resolve().parents[1]

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
COMPARE = "compare_keys"  # models the Compare page opens with (a finished sweep sets them)
METRICS = (("test ELBO (nats)", "elbo"), ("reconstruction", "reconstruction"), ("KL", "kl"),
           ("classifier accuracy", "classifier_accuracy"), ("active latent units", "active_units"))


def checkpoint_dir() -> Path:
    """Where shipped checkpoints live; VAE_LAB_CHECKPOINTS overrides (tests, development)."""
    return Path(os.environ.get("VAE_LAB_CHECKPOINTS") or ROOT / "checkpoints")


@st.cache_resource(show_spinner="Loading model…", max_entries=16)
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
    run: int = 0  # which of the job's runs (a sweep has several)
    evaluation: dict | None = None
    extras: dict = field(default_factory=dict)

    @property
    def result(self):
        return self.job.results[self.run] if self.job is not None else None


def _forget_models(dicts: list):
    """The session ended: drop its models (and their TF variables) even if something still
    holds its session state."""
    for models in dicts:
        models.clear()
    dicts.clear()


@st.cache_resource(scope="session", on_release=_forget_models)
def _release_on_session_end() -> list:
    return []


def trained_models() -> dict[str, TrainedModel]:
    """This session's own models (trained or uploaded); released when the session ends."""
    models = st.session_state.get("trained_models")
    if models is None:
        models = st.session_state["trained_models"] = {}
        _release_on_session_end().append(models)
    return models


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


def describe(config: vae_core.VAEConfig, epochs: int | None = None) -> str:
    """One line about a model; `epochs` = epochs trained, when known (else the planned ones)."""
    kind = "conditional" if config.conditional else "unconditional"
    kl = "KL off" if config.beta == 0 else f"β = {config.beta:g}"
    return (f"{config.arch.upper()}, {kind}, {config.latent_dim}-D style latent, {kl}, "
            f"{epochs or config.epochs} epochs")


def class_names(model: vae_core.VAE) -> tuple[str, ...]:
    return vae_core.CLASS_NAMES[model.config.dataset]


def evaluation(key: str) -> dict:
    """Test-set metrics of a model in the picker: a shipped model's card, else measured once
    (on the data it was trained with, for a run of this session) and kept with the model."""
    if key in SHIPPED:
        model = shipped_model(key)
        return (model.card.get("evaluation") or {}) if model is not None else {}
    entry = trained_models().get(key)
    if entry is None:
        return {}
    if entry.evaluation is None:
        entry.evaluation = entry.model.card.get("evaluation")
    if entry.evaluation is None:
        with st.spinner("Evaluating on the test images…"):
            data = entry.job.dataset if entry.job is not None else None
            entry.evaluation = vae_core.evaluate(entry.model, data)
    return entry.evaluation
