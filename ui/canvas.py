"""A drawing canvas widget: Streamlit's own components v2 (inline HTML, CSS and JS; no build
step, no third-party package).

Mouse, pen and finger all draw through pointer events. The strokes are ink on a transparent
sheet, so the exported PNG carries the drawing in its alpha channel (what
`vae_core.images.prepare_digit` reads). On every pointer-up the JS sends the PNG as a data URL
with `setStateValue("image", ...)`, which reruns the page; Clear sends None. The drawing is
passed back as `data`, so a canvas drawn afresh (after a visit to another page) shows it again.
"""

from __future__ import annotations

import base64
import binascii

import streamlit as st

SIZE = 280  # CSS pixels (and canvas pixels): ten times MNIST's 28

_HTML = f"""
<div class="vae-canvas">
  <canvas width="{SIZE}" height="{SIZE}" aria-label="Drawing area: draw one digit here"></canvas>
  <div class="tools">
    <button type="button" class="clear">Clear</button>
    <label>Pen <input class="pen" type="range" min="6" max="48" step="1" value="24"></label>
  </div>
</div>
"""

_CSS = f"""
.vae-canvas {{ display: inline-flex; flex-direction: column; gap: 0.5rem; }}
.vae-canvas canvas {{
  width: {SIZE}px; height: {SIZE}px; background: #fff; border: 1px solid #bbb;
  border-radius: 6px; touch-action: none; cursor: crosshair;
}}
.vae-canvas .tools {{ display: flex; gap: 1rem; align-items: center;
  font-family: var(--st-font, sans-serif); font-size: 0.9rem; color: var(--st-text-color); }}
.vae-canvas button {{ padding: 0.25rem 0.9rem; border-radius: 6px; border: 1px solid #bbb;
  background: var(--st-secondary-background-color, #f0f2f6); color: inherit; cursor: pointer; }}
"""

_JS = """
export default function ({ parentElement, setStateValue, data }) {
  const canvas = parentElement.querySelector("canvas");
  const pen = parentElement.querySelector(".pen");
  const clear = parentElement.querySelector(".clear");
  const ctx = canvas.getContext("2d");
  let drawing = false, last = null;

  // Back on the page with a drawing in the session: show it again on the fresh canvas.
  if (!canvas.dataset.inked && data && data.image) {
    const picture = new Image();
    picture.onload = () => { if (!canvas.dataset.inked) ctx.drawImage(picture, 0, 0); };
    picture.src = data.image;
    canvas.dataset.inked = "1";
  }

  const at = (event) => {
    const box = canvas.getBoundingClientRect();
    return [(event.clientX - box.left) * canvas.width / box.width,
            (event.clientY - box.top) * canvas.height / box.height];
  };
  const dot = (p) => {
    ctx.beginPath();
    ctx.arc(p[0], p[1], Number(pen.value) / 2, 0, 2 * Math.PI);
    ctx.fillStyle = "#111";
    ctx.fill();
  };
  const line = (a, b) => {
    ctx.beginPath();
    ctx.moveTo(a[0], a[1]);
    ctx.lineTo(b[0], b[1]);
    ctx.strokeStyle = "#111";
    ctx.lineWidth = Number(pen.value);
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.stroke();
  };
  const down = (event) => {
    event.preventDefault();
    canvas.setPointerCapture(event.pointerId);
    drawing = true;
    canvas.dataset.inked = "1";
    last = at(event);
    dot(last);
  };
  const move = (event) => {
    if (!drawing) return;
    event.preventDefault();
    const p = at(event);
    line(last, p);
    last = p;
  };
  const up = (event) => {
    if (!drawing) return;
    drawing = false;
    last = null;
    setStateValue("image", canvas.toDataURL("image/png"));
  };
  const wipe = () => {
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    canvas.dataset.inked = "";
    setStateValue("image", null);
  };

  canvas.addEventListener("pointerdown", down);
  canvas.addEventListener("pointermove", move);
  canvas.addEventListener("pointerup", up);
  canvas.addEventListener("pointercancel", up);
  clear.addEventListener("click", wipe);
  return () => {
    canvas.removeEventListener("pointerdown", down);
    canvas.removeEventListener("pointermove", move);
    canvas.removeEventListener("pointerup", up);
    canvas.removeEventListener("pointercancel", up);
    clear.removeEventListener("click", wipe);
  };
}
"""

_PREFIX = "data:image/png;base64,"
MAX_DATA_URL = 8_000_000  # a 280 x 280 PNG is far smaller; anything larger is not ours


_CANVAS = st.components.v2.component("vae_lab_canvas", html=_HTML, css=_CSS, js=_JS)


def drawing_canvas(key: str, on_change=None) -> bytes | None:
    """Show the canvas; the PNG bytes of the current drawing, or None when it is empty."""
    previous = st.session_state.get(key)  # redrawn on a fresh canvas after a page switch
    image = previous.get("image") if hasattr(previous, "get") else None
    result = _CANVAS(key=key, default={"image": None}, data={"image": image},
                          on_image_change=on_change or (lambda: None), width="content")
    return png_from_data_url(result.get("image") if hasattr(result, "get")
                             else getattr(result, "image", None))


def png_from_data_url(url) -> bytes | None:
    """The PNG bytes of a `data:image/png;base64,...` URL; None for anything else."""
    if not isinstance(url, str) or not url.startswith(_PREFIX) or len(url) > MAX_DATA_URL:
        return None
    try:
        return base64.b64decode(url[len(_PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        return None
