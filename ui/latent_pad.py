"""The latent pad: a latent map whose decoder runs in the visitor's browser (components v2).

Dragging on the map (mouse, pen or finger) decodes the point under the pointer on every
animation frame in the page, so a drag costs the server nothing; Python hears only the released
point and the picked class. The weights travel once per model: a "model" instance carries the
`vae_core.web_decoder` payload, a message identical on every rerun that Streamlit sends once and
then references by hash, while a "pad" instance carries the small settings that change per run.
The JS and CSS live in ui/latent_pad/.
"""

from __future__ import annotations

import hashlib
import math
import threading
import weakref
from pathlib import Path

import numpy as np
import streamlit as st

from vae_core.web_decoder import WebDecoderError, decoder_payload, payload_hash

_ASSETS = Path(__file__).with_name("latent_pad")
_PAD = st.components.v2.component(
    "vae_lab_latent_pad", html='<div class="vae-latent-pad"></div>',
    css=(_ASSETS / "pad.css").read_text(), js=(_ASSETS / "pad.js").read_text())

_PAYLOADS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_PAYLOADS_LOCK = threading.Lock()
_MAPS_PER_MODEL = 4


def model_payload(model, points, labels, projection) -> tuple[bytes, str]:
    """The browser payload of `model` with this map, and its hash: built once per model object
    and map (the cache forgets a model when it is garbage-collected)."""
    points = np.ascontiguousarray(points, np.float32)
    labels = np.ascontiguousarray(labels, np.int64)
    parts = [points, labels] + ([] if projection is None else
                                [np.asarray(projection.center, np.float32),
                                 np.asarray(projection.components, np.float32)])
    digest = hashlib.blake2b(b"".join(p.tobytes() for p in parts), digest_size=16).digest()
    with _PAYLOADS_LOCK:
        cached = _PAYLOADS.get(model, {})
        if digest in cached:
            return cached[digest]
    payload = decoder_payload(model, points, labels, projection)  # outside the lock: slow-ish
    entry = (payload, payload_hash(payload))
    with _PAYLOADS_LOCK:
        maps = _PAYLOADS.setdefault(model, {})
        while len(maps) >= _MAPS_PER_MODEL:
            maps.pop(next(iter(maps)))
        maps[digest] = entry
    return entry


def latent_pad(key: str, model, points, labels, projection, class_names, *, lim: float,
               axis_titles=("z₁", "z₂"), digit: int | None = None, star=None, point=None,
               shift=None, on_change=None) -> dict | None:
    """Show the live latent map of `model`; what the visitor last released, or None.

    `points` (n, 2) and `labels` (n,) are the encoded test images; `projection` maps the plane
    back to the latent (a `vae_core.latent.Projection`; None for 2-D latents). `point` and
    `digit` place the marker and pick the class when they change (e.g. from twin sliders),
    `star` marks another point (e.g. the visitor's own digit); `shift` (latent_dim,) moves the
    plane off the map's centre, e.g. through that digit's own latent code. Returns {"point":
    (x, y) or None, "digit": int or None} once the visitor has released a point or picked a
    class; each release or pick reruns the page once (and calls `on_change` first), a drag in
    between none. A model the browser cannot run gets a short note instead, and None.
    """
    try:
        payload, model_hash = model_payload(model, points, labels, projection)
    except WebDecoderError as e:
        st.caption(f"The live map is not available for this model: {e}")
        return None
    settings = {
        "model": model_hash, "lim": float(lim), "titles": [str(t) for t in axis_titles],
        "names": [str(n) for n in class_names], "conditional": bool(model.config.conditional),
        "point": _pair(point), "star": _pair(star),
        "digit": int(digit) if digit is not None else None,
        "shift": None if shift is None else [float(v) for v in np.ravel(shift)],
    }
    callback = on_change or _ignore
    with st.container(gap=None):
        result = _PAD(key=key, data=settings, default={"point": None, "digit": None},
                      on_point_change=callback, on_digit_change=callback)
        _PAD(key=f"{key}_model", data=payload)
    return _released(result, lim)


def _ignore():
    pass


def _pair(value) -> list[float] | None:
    if value is None:
        return None
    x, y = (float(v) for v in value)
    return [x, y] if math.isfinite(x) and math.isfinite(y) else None


def _released(result, lim: float) -> dict | None:
    """The component's state, checked: it comes from the browser."""
    state = dict(result) if result is not None else {}
    point = state.get("point")
    try:
        point = tuple(min(lim, max(-lim, v)) for v in _pair(point)) if point else None
    except (TypeError, ValueError):
        point = None
    digit = state.get("digit")
    digit = digit if type(digit) is int and 0 <= digit <= 9 else None
    if point is None and digit is None:
        return None
    return {"point": point, "digit": digit}
