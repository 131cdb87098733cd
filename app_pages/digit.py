"""Your digit: draw or upload a digit, see what the model makes of it, rewrite it as every digit."""

import time

import numpy as np
import streamlit as st

import vae_core
from ui import canvas, catalog, charts, latent_pad, latent_views, pictures
from vae_core import images, latent

SOURCE = "digit_source"  # which input spoke last: "canvas" or "upload"


def read_digit(data: bytes, problem=st.error) -> np.ndarray | None:
    """Uploaded or drawn bytes -> the 28 x 28 input, or None after a plain message."""
    try:
        return images.prepare_digit(images.open_image(data))
    except images.ImageError as e:
        problem(str(e), icon=":material/error:")
        return None


def choose_input():
    """The canvas and the uploader side by side; the one used last is the page's digit."""
    draw_col, upload_col = st.columns(2, gap="large")
    with draw_col:
        st.markdown("**Draw** a digit with the mouse, a pen or a finger")
        drawn = canvas.drawing_canvas(
            "digit_canvas", on_change=lambda: st.session_state.update({SOURCE: "canvas"}))
    with upload_col:
        upload = st.file_uploader(
            "**…or upload** a photo of a digit written on paper (PNG, JPEG or WebP)",
            # No `type=` filter: Streamlit would raise on any other extension before this page
            # runs (a crafted client can send one); open_image checks the content itself and
            # answers anything else with a plain sentence.
            key="digit_upload", max_upload_size=25,
            on_change=lambda: st.session_state.update({SOURCE: "upload"}),
            help="Dark ink on light paper, any size; crop loosely around one digit.")
        st.caption("Either way the picture is made the way MNIST was: the ink is cropped, "
                   "scaled to 20 pixels and centred by its mass in a 28 × 28 square.")
    use_upload = upload is not None and (st.session_state.get(SOURCE) == "upload"
                                         or drawn is None)
    if use_upload:
        return read_digit(upload.getvalue()), f"your upload ({upload.name})"
    if drawn is not None:
        return read_digit(drawn, problem=st.warning), "your drawing"
    st.info("Draw a digit on the canvas or upload a photo to start.", icon=":material/draw:")
    return None, ""


def latent_map(model, key, mean, digit, names):
    """The live map with a star at the visitor's digit: dragging from the star morphs the digit
    through the plane (and, for conditional models, redraws its style as every class)."""
    view = latent_views.latent_view(key)
    star = view.projection.to_2d(mean[None])[0]
    lim = max(view.extent(), 1.1 * float(np.abs(star).max()), 1.0)
    plane = view.projection
    shift = mean - plane.center - star @ plane.components  # the plane through the digit itself
    latent_pad.latent_pad(f"digit_pad_{key}", model, view.points, view.labels, plane, names,
                          lim=lim, axis_titles=charts.axis_titles(plane), digit=digit,
                          star=star, point=star, shift=shift)
    st.caption(f"The star is your digit, at ({star[0]:.2f}, {star[1]:.2f}); the dots are test "
               "images, as on the Latent space page. Press and drag from the star to morph "
               "your digit across the map.")


def morph_section(model, x, start, names):
    st.subheader("Morph")
    conditional = model.config.conditional
    kinds = ["a digit", "a test image", "another drawing"]
    c1, c2, c3 = st.columns([3, 2, 3])
    with c1:
        kind = st.segmented_control("Morph into", kinds, default=kinds[0], key="morph_kind",
                                    required=True) or kinds[0]
    target = None
    with c2:
        if kind == "a digit":
            digit = st.selectbox("Which", range(10), index=8, format_func=lambda d: names[d],
                                 key="morph_digit")
            if conditional:  # your style, written as that digit
                target = start.copy()
                target[-10:] = np.eye(10, dtype=np.float32)[digit]
            else:  # an unconditional model cannot be told a digit: use a test image of it
                data = vae_core.load_dataset(model.config.dataset)
                target = latent.decoder_inputs(model, data.x_test[data.y_test == digit][:1])[0]
        elif kind == "a test image":
            index = st.number_input("Test image number", 0, 9999, 0, key="morph_index")
            data = vae_core.load_dataset(model.config.dataset)
            target = latent.decoder_inputs(model, data.x_test[int(index)][None])[0]
    with c3:
        steps = st.slider("Steps", 3, 30, 10, key="morph_steps")
    if kind == "another drawing":
        st.markdown("Draw the second digit:")
        second = canvas.drawing_canvas("digit_canvas_2")
        if second is None:
            return st.info("Draw a second digit to morph into.", icon=":material/draw:")
        y = read_digit(second, problem=st.warning)
        if y is None:
            return
        target = latent.decoder_inputs(model, y[None])[0]
    frames = latent.morph(model, start, target, steps)
    pictures.show_grid(frames, scale=2, caption="From your digit (left) to the target (right), "
                                                "in equal steps through the latent space.")
    step_col, frame_col = st.columns([3, 1], vertical_alignment="center")
    with step_col:
        step = st.slider("Step", 1, steps, 1, key=f"morph_step_{steps}")
        st.download_button("Download the morph as a GIF",  # made only when clicked
                           lambda: images.to_gif(np.concatenate([frames, frames[::-1]]), scale=4),
                           file_name="vae-lab-morph.gif", mime="image/gif",
                           icon=":material/download:", key="morph_gif")
    with frame_col:
        pictures.show(frames[step - 1], f"Step {step} of {steps}", scale=5)


st.title("Your digit")
model = catalog.require_active_model()
names = catalog.class_names(model)
if model.config.dataset != "mnist":
    st.caption("The active model knows garments, not digits: it will read your drawing as the "
               "garment it resembles most. Pick an MNIST model in the sidebar for digits.")
x, source = choose_input()
if x is None:
    st.stop()

started = time.perf_counter()
mean = latent.encode_means(model, x[None])[0]
probs = model.classify(x[None])[0] if model.config.conditional else None
start = np.concatenate([mean, probs]).astype(np.float32) if probs is not None else mean
recon = model.decode(start[None])[0]  # the reconstruction: the code a redrawing decodes
seen_col, recon_col, probs_col = st.columns([1, 1, 3])
with seen_col:
    pictures.show(x, "As the model sees it (28 × 28)", scale=5)
with recon_col:
    pictures.show(recon, "Its reconstruction", scale=5)
with probs_col:
    if probs is not None:
        st.markdown(f"**The model reads {source} as: {names[int(np.argmax(probs))]}** "
                    f"({probs.max():.0%} sure)")
        st.plotly_chart(charts.probability_bars(probs, names, height=220), key="digit_probs")
    else:
        st.caption("This model is unconditional: it has no classifier, so it cannot say which "
                   "digit it sees. Pick a conditional model in the sidebar for that.")

map_col, restyle_col = st.columns([1, 1], gap="large")
with map_col:
    st.subheader("Where it lands")
    if model.config.latent_dim >= 2:
        latent_map(model, catalog.active_key(), mean,
                   int(np.argmax(probs)) if probs is not None else None, names)
    else:
        st.caption("This model has a 1-D latent space: there is no plane to show.")
with restyle_col:
    st.subheader("Your style, every digit")
    if model.config.conditional:
        codes = model.latent_codes(np.repeat(mean[None], 10, axis=0), range(10))
        pictures.show_grid(model.decode(codes), scale=2, width="stretch",
                           caption="Your digit's style (its latent code) decoded as each of "
                                   + ", ".join(names) + ".")
    else:
        st.info("Restyle needs a conditional model: this one was never told which digit it "
                "saw, so it cannot be asked to write another. Pick a conditional model in the "
                "sidebar.", icon=":material/info:")

morph_section(model, x, start, names)
st.caption(f"Computed in {1000 * (time.perf_counter() - started):.0f} ms.")
