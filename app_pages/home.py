"""Home: what a VAE is, in plain words and one picture, a live example, and where to go next."""

import streamlit as st

from ui import charts, errors, catalog, pictures
from vae_core.training import reconstruct

st.title("VAE Lab")
st.markdown("#### Teach a computer to draw digits by having it compress them, then watch it learn.")

model = catalog.shipped_model(catalog.DEFAULT_MODEL) or catalog.active_model()
seed = st.session_state.setdefault("home_seed", 7)

with errors.friendly_errors():
    if model is not None:
        x = model.generate([3], seed)  # an image to pass through the picture
        diagram = charts.vae_diagram(x[0], reconstruct(model, x)[0])
    else:
        diagram = charts.vae_diagram()
    st.image(diagram, width=900)

code, kl, conditional = st.columns(3, gap="large")
code.markdown(
    "**Compress, then redraw.** The **encoder** looks at an image and describes it with a few "
    "numbers: a place in a small *latent space*, given as a **mean** and a **spread** (a small "
    "cloud, not one exact point). The **decoder** takes a point drawn from that cloud and "
    "tries to redraw the image.")
kl.markdown(
    "**Keep the codes together.** Training rewards good redrawings (the *reconstruction* "
    "loss) and, through the **KL term**, keeps every cloud close to a standard bell curve. "
    "That packs the codes tightly with no empty gaps, so *any* random point decodes to a "
    "believable image: the model can invent new ones.")
conditional.markdown(
    "**Say which digit.** A **digit-conditioned** VAE also learns to recognise the digit, "
    "and its decoder is told which digit to draw. The latent space then only has to hold the "
    "*style* (slant, thickness, loops), so one style can be written as any digit.")

st.subheader("Fresh from the model")
if model is None:
    st.info("The shipped digit model is missing, so there is nothing to show here yet. "
            "Train a model on the Train page.", icon=":material/info:")
else:
    with errors.friendly_errors():
        row = model.generate(list(range(10)), seed)
        pictures.show_grid(row, scale=3)
        if model.config.conditional:
            things = "Digits 0–9" if model.config.dataset == "mnist" else "The ten garments"
            st.caption(f"{things}, all drawn with one random style (seed {seed}). Nothing here "
                       "is copied from the training data.")
        else:
            st.caption(f"Ten random samples from the model (seed {seed}).")
        st.button("Another style", icon=":material/refresh:",
                  on_click=lambda: st.session_state.update(home_seed=pictures.new_seed()))

st.subheader("Explore")
train, generate, latent = st.columns(3)
with train:
    st.page_link("app_pages/train.py", label="**Train** a VAE and watch it learn",
                 icon=":material/model_training:")
    st.caption("Loss curves, samples after every epoch, and the latent space organising "
               "itself, live.")
with generate:
    st.page_link("app_pages/generate.py", label="**Generate** digits in any style",
                 icon=":material/draw:")
    st.caption("Pick a digit and a style seed; the same style carries across all ten digits.")
with latent:
    st.page_link("app_pages/latent.py", label="**Explore** the latent space",
                 icon=":material/scatter_plot:")
    st.caption("Click anywhere in the map of codes to decode it; see why the KL term matters.")
