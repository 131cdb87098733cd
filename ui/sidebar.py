"""The sidebar, identical on every page: the model picker and 'Load a checkpoint'."""

from __future__ import annotations

import uuid

import streamlit as st

import vae_core
from vae_core.data import DISPLAY_NAMES

from .errors import friendly_errors, log
from .runs import collect_finished_runs
from .catalog import (ACTIVE, DEFAULT_MODEL, TrainedModel, active_key, active_model, describe,
                     model_choices, trained_models)

UPLOAD = "upload_checkpoint"  # session-state key of the uploader widget


def draw():
    """The model picker and dataset, identical on every page."""
    collect_finished_runs()
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
                     help="The model the other pages use. Shipped models come with the app; "
                          "models you train here are added to this list.")
        with friendly_errors():
            model = active_model()
            if model is not None:
                st.caption(f"**Dataset:** {DISPLAY_NAMES[model.config.dataset]}  \n"
                           f"{describe(model.config, model.epochs_trained)}")
        checkpoint_uploader()


def checkpoint_uploader():
    """Bring back a model downloaded from the Train page (a checkpoint zip) into this session."""
    with st.expander("Load a checkpoint", icon=":material/upload:"):
        # No `type=` filter: Streamlit raises on any other extension before the callback runs
        # (a client can send one); load_checkpoint_zip checks the content itself.
        st.file_uploader("Checkpoint zip", key=UPLOAD, on_change=_load_upload,
                         help="A .zip downloaded from the Train page. It is loaded safely (no "
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
    name = file.name if len(file.name) <= 60 else file.name[:57] + "…"
    try:
        model = vae_core.load_checkpoint_zip(file.getvalue())
    except vae_core.CheckpointError as e:
        st.session_state["upload_problem"] = f"Could not load {name}: {e}"
        return
    except Exception:  # a bug, not the visitor's doing: log it, tell them calmly
        log.exception("Unexpected error while loading an uploaded checkpoint")
        st.session_state["upload_problem"] = (
            f"Could not load {name}: it is not a checkpoint zip this app can read.")
        return
    key = f"uploaded-{uuid.uuid4().hex[:8]}"
    label = (f"{name.removesuffix('.zip')} · {DISPLAY_NAMES[model.config.dataset].split()[0]}"
             f", {model.config.latent_dim}-D (uploaded)")
    trained_models()[key] = TrainedModel(key=key, label=label, model=model)
    st.session_state[ACTIVE] = key
