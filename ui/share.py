"""Shareable URLs: the Generate page's model, digit, seed and count live in the query string.

The page writes them after every run (`write_generate_url`); a URL that differs from what this
session last wrote is one the visitor opened or pasted, so its values are copied into the
widgets' state before any widget is drawn (`apply_url`, called by app.py before the sidebar,
because the model picker is in the sidebar). Values that do not parse or are out of range are
ignored: a hand-edited URL never breaks the page.
"""

from __future__ import annotations

import streamlit as st

from .catalog import ACTIVE, model_choices

KEYS = ("model", "digit", "seed", "count")
_WRITTEN = "_url_written"  # the query string this session wrote last
ALL = "all"
MAX_SEED = 2**31 - 1
COUNT_LIMITS = {True: 12, False: 40}  # rows of all ten digits / single images (Generate page)


def _current() -> dict[str, str]:
    return {k: st.query_params[k] for k in KEYS if k in st.query_params}


def _int(text, low: int, high: int) -> int | None:
    try:
        value = int(str(text).strip())
    except (TypeError, ValueError):
        return None
    return value if low <= value <= high else None


def parse(params: dict) -> dict:
    """The valid values among `params` (strings from a URL), as widget values."""
    values = {}
    if params.get("model") in model_choices():
        values["model"] = params["model"]
    digit = params.get("digit")
    if digit == ALL:
        values["digit"] = ALL
    elif _int(digit, 0, 9) is not None:
        values["digit"] = _int(digit, 0, 9)
    if _int(params.get("seed"), 0, MAX_SEED) is not None:
        values["seed"] = _int(params.get("seed"), 0, MAX_SEED)
    if _int(params.get("count"), 1, max(COUNT_LIMITS.values())) is not None:
        values["count"] = _int(params.get("count"), 1, max(COUNT_LIMITS.values()))
    return values


def apply_url():
    """Copy an opened URL's values into widget state (before the widgets are drawn)."""
    params = _current()
    if not params or params == st.session_state.get(_WRITTEN):
        return
    values = parse(params)
    if "model" in values:
        st.session_state[ACTIVE] = values["model"]
    if "digit" in values:
        st.session_state["gen_digit"] = values["digit"]
    if "seed" in values:
        st.session_state["gen_seed"] = values["seed"]
    if "count" in values:
        for all_ten, limit in COUNT_LIMITS.items():
            st.session_state[f"gen_count_{all_ten}"] = min(values["count"], limit)
    st.session_state[_WRITTEN] = params  # applied once; later changes come from the widgets


def write_generate_url(model: str | None, digit, seed: int, count: int):
    """Mirror the Generate page's picture in the URL, so copying it shares the picture."""
    params = {"model": model or "", "digit": str(digit), "seed": str(int(seed)),
              "count": str(int(count))}
    params = {k: v for k, v in params.items() if v}
    if _current() != params:
        st.query_params.from_dict(params)
    st.session_state[_WRITTEN] = params
