"""Problems a visitor can cause get a plain sentence; bugs get a calm note and a server log line."""

from __future__ import annotations

import contextlib
import logging

import streamlit as st

import vae_core

log = logging.getLogger("vae_lab")

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
