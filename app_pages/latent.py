"""Latent space: where the encoder puts test images, what each point decodes to, why KL matters."""

import math

import numpy as np
import streamlit as st

from ui import charts, errors, latent_views, models, pictures
from vae_core import latent

KL_EXPLANATION = (
    "Both models have the same architecture, seed and training; only the KL term differs. "
    "**Without it (β = 0) the encoder may put codes anywhere, so they spread far apart with "
    "empty gaps between them, and a random point from N(0, I) usually lands where no image "
    "ever went and decodes to a smudge. With it, every code is pulled towards N(0, I), which "
    "packs the clusters densely around the origin (the dashed square), so random samples and "
    "the whole decoded grid look like digits.**")


def explore_active_model():
    model = models.active_model()
    if model is None:
        return models.no_model_note()
    if model.config.latent_dim < 2:
        return st.info("This model has a 1-D latent space, so there is no plane to show. Pick "
                       "another model in the sidebar.", icon=":material/info:")
    key, names = models.active_key(), models.class_names(model)
    view = latent_views.latent_view(key)
    st.caption(
        "Each dot is one test image, placed at the mean the encoder gives it"
        + ("." if view.projection.is_identity else
           f", projected from {model.config.latent_dim}-D onto its two main directions (PCA).")
        + (" This model is told the class, so its latent space only has to hold the style: "
           "the classes need not separate." if model.config.conditional else "")
        + " Click a dot or drag a box to decode that spot; the grid on the right decodes the "
          "whole square.")

    range_col, size_col, digit_col = st.columns(3)
    with range_col:
        fit = max(1.0, math.ceil(view.extent() * 2) / 2)
        lim = st.slider("Range shown (±)", 0.5, max(10.0, 2 * fit), fit, 0.5, key=f"lim_{key}",
                        persist_state="session",
                        help="Half-width of the square that the map and the grid show.")
    with size_col:
        n = st.slider("Grid size", 5, 25, 15, key="manifold_n", persist_state="session",
                      help="The decoded grid has n × n images, decoded in one batch.")
    with digit_col:
        digit = (st.selectbox("Decode as", range(10), format_func=lambda d: names[d],
                              key="latent_digit", persist_state="session",
                              help="A conditional model also needs the class to draw.")
                 if model.config.conditional else None)

    titles = charts.axis_titles(view.projection)
    scatter_col, grid_col = st.columns(2)
    with scatter_col:
        event = st.plotly_chart(
            charts.latent_scatter(view.points, view.labels, names, lim, axis_titles=titles,
                                  selectable=True),
            key=f"scatter_{key}", on_select="rerun", selection_mode=("points", "box"))
    with grid_col:
        grid = latent.manifold(model, n, lim, view.projection, digit)
        st.plotly_chart(charts.manifold_figure(grid, lim, n, axis_titles=titles),
                        key=f"manifold_{key}")

    # One point, picked on the map or set with the sliders (the map's keyboard twin).
    x_key, y_key = f"zx_{key}_{lim}", f"zy_{key}_{lim}"
    picked = latent_views.selected_point(event)
    if picked is not None and st.session_state.get("latent_pick") != (key, picked):
        st.session_state["latent_pick"] = (key, picked)
        st.session_state[x_key], st.session_state[y_key] = np.clip(picked, -lim, lim).tolist()
    st.session_state.setdefault(x_key, 0.0)
    st.session_state.setdefault(y_key, 0.0)
    sliders_col, decoded_col = st.columns([2, 1], vertical_alignment="center")
    with sliders_col:
        st.markdown("**Decode one point**")
        zx = st.slider(f"{titles[0]} (horizontal)", -lim, lim, step=lim / 50, key=x_key)
        zy = st.slider(f"{titles[1]} (vertical)", -lim, lim, step=lim / 50, key=y_key)
    with decoded_col:
        decoded = latent.decode_points(model, [[zx, zy]], view.projection, digit)[0]
        pictures.show(decoded, f"Decoded at ({zx:.2f}, {zy:.2f})", scale=5)


def compare_kl():
    st.markdown(KL_EXPLANATION)
    missing = [name for name in models.KL_PAIR if models.shipped_model(name) is None]
    if missing:
        return st.warning(f"This comparison needs the shipped checkpoints {' and '.join(missing)}"
                          f", which are missing from {models.checkpoint_dir()}.",
                          icon=":material/warning:")
    views = {name: latent_views.latent_view(name) for name in models.KL_PAIR}
    lim = 1.05 * max(3.5, max(v.extent(1.0) for v in views.values()))  # one scale for both
    for column, name in zip(st.columns(2, gap="large"), models.KL_PAIR):
        with column:
            model, view = models.shipped_model(name), views[name]
            st.subheader("KL on (β = 1)" if model.config.beta > 0 else "KL off (β = 0)")
            st.plotly_chart(charts.latent_scatter(view.points, view.labels, models.class_names(model),
                                                  lim, prior_box=True, height=380),
                            key=f"kl_scatter_{name}")
            st.caption(f"Spread of the encoded means (std): **{view.std:.2f}**. The dashed "
                       "square is [-3, 3]², where N(0, I) puts nearly all random samples."
                       + (" To see these codes up close, pick this model in the sidebar."
                          if model.config.beta > 0 else ""))
            grid_col, samples_col = st.columns(2)
            with grid_col:
                pictures.show(latent.manifold(model, 10, 3.0), "Decoded grid over [-3, 3]²", scale=1,
                        width="stretch")
            with samples_col:
                pictures.show_grid(model.generate(list(range(16)), seed=1), cols=4, scale=2,
                             caption="16 random samples, z ~ N(0, I)")


st.title("Latent space")
explore, compare = st.tabs(["Explore the active model", "KL on vs KL off"])
with explore, errors.friendly_errors():
    explore_active_model()
with compare, errors.friendly_errors():
    compare_kl()
