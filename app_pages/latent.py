"""Latent space: where the encoder puts test images, what each point decodes to, why KL matters."""

import math

import streamlit as st

from ui import catalog, charts, errors, latent_pad, latent_views, pictures
from vae_core import history, latent

KL_EXPLANATION = (
    "Both models have the same architecture, seed and training; only the KL term differs. "
    "**Without it (β = 0) the encoder may put codes anywhere, so they spread far apart with "
    "empty gaps between them, and a random point from N(0, I) usually lands where no image "
    "ever went and decodes to a smudge. With it, every code is pulled towards N(0, I), which "
    "packs the clusters densely around the origin (the dashed square), so random samples and "
    "the whole decoded grid look like digits.**")


def explore_active_model():
    model = catalog.active_model()
    if model is None:
        return catalog.no_model_note()
    if model.config.latent_dim < 2:
        return st.info("This model has a 1-D latent space, so there is no plane to show. Pick "
                       "another model in the sidebar.", icon=":material/info:")
    key, names = catalog.active_key(), catalog.class_names(model)
    view = latent_views.latent_view(key)
    st.caption(
        "Each dot is one test image, placed at the mean the encoder gives it"
        + ("." if view.projection.is_identity else
           f", projected from {model.config.latent_dim}-D onto its two main directions (PCA).")
        + (" This model is told the class, so its latent space only has to hold the style: "
           "the classes need not separate." if model.config.conditional else "")
        + " Press and drag on the map to decode every point you pass, right in your browser; "
          "the grid on the right decodes the whole square.")

    range_col, size_col, digit_col = st.columns(3)
    with range_col:
        fit = max(1.0, math.ceil(view.extent() * 2) / 2)
        lim = st.slider("Range shown (±)", 0.5, max(10.0, 2 * fit), fit, 0.5, key=f"lim_{key}",
                        persist_state="session",
                        help="Half-width of the square that the map and the grid show.")
    with size_col:
        n = st.slider("Grid size", 5, 25, 15, key="manifold_n", persist_state="session",
                      help="The decoded grid has n × n images.")
    with digit_col:
        digit = (st.selectbox("Decode as", range(10), format_func=lambda d: names[d],
                              key="latent_digit", persist_state="session",
                              help="A conditional model also needs the class to draw.")
                 if model.config.conditional else None)

    titles = charts.axis_titles(view.projection)
    pad_col, grid_col = st.columns(2)
    with pad_col:
        explore_point(model, key, view, lim, digit, names, titles)
    with grid_col:
        grid = latent_views.manifold_image(key, n, lim, digit)
        st.plotly_chart(charts.manifold_figure(grid, lim, n, axis_titles=titles),
                        key=f"manifold_{key}")


@st.fragment
def explore_point(model, key, view, lim, digit, names, titles):
    """The live map and one decoded point: a slider step or a release reruns only this."""
    if st.session_state.pop("_latent_digit_picked", False):
        st.rerun()  # a class picked on the map: the grid beside it follows
    x_key, y_key = f"zx_{key}_{lim}", f"zy_{key}_{lim}"
    st.session_state.setdefault(x_key, 0.0)
    st.session_state.setdefault(y_key, 0.0)
    released = latent_pad.latent_pad(
        f"latent_pad_{key}", model, view.points, view.labels, view.projection, names, lim=lim,
        axis_titles=titles, digit=digit,
        point=(st.session_state[x_key], st.session_state[y_key]), on_change=_class_picked)
    point = released and released["point"]
    if point and st.session_state.get("latent_pick") != (key, point):  # a new release
        st.session_state["latent_pick"] = (key, point)
        st.session_state[x_key], st.session_state[y_key] = point
    st.markdown("**Decode one point** (the map's keyboard twin)")
    zx = st.slider(f"{titles[0]} (horizontal)", -lim, lim, step=lim / 50, key=x_key)
    zy = st.slider(f"{titles[1]} (vertical)", -lim, lim, step=lim / 50, key=y_key)
    decoded = latent.decode_points(model, [[zx, zy]], view.projection, digit)[0]
    pictures.show(decoded, f"Decoded at ({zx:.2f}, {zy:.2f})", scale=4)


def _class_picked():
    """The map's callback, before its rerun: a class picked there becomes the page's class."""
    key = f"latent_pad_{catalog.active_key()}"
    digit = (st.session_state.get(key) or {}).get("digit")
    if isinstance(digit, int) and 0 <= digit <= 9 and digit != st.session_state.get(
            "latent_digit"):
        st.session_state["latent_digit"] = digit
        st.session_state["_latent_digit_picked"] = True


def compare_kl():
    st.markdown(KL_EXPLANATION)
    missing = [name for name in catalog.KL_PAIR if catalog.shipped_model(name) is None]
    if missing:
        return st.warning(f"This comparison needs the shipped checkpoints {' and '.join(missing)}"
                          f", which are missing from {catalog.checkpoint_dir()}.",
                          icon=":material/warning:")
    views = {name: latent_views.latent_view(name) for name in catalog.KL_PAIR}
    lim = 1.05 * max(3.5, max(v.extent(1.0) for v in views.values()))  # one scale for both
    for column, name in zip(st.columns(2, gap="large"), catalog.KL_PAIR):
        with column:
            model, view = catalog.shipped_model(name), views[name]
            st.subheader("KL on (β = 1)" if model.config.beta > 0 else "KL off (β = 0)")
            names = catalog.class_names(model)
            st.plotly_chart(charts.latent_scatter(view.points, view.labels, names,
                                                  lim, prior_box=True, height=380),
                            key=f"kl_scatter_{name}")
            st.caption(f"Spread of the encoded means (std): **{view.std:.2f}**. The dashed "
                       "square is [-3, 3]², where N(0, I) puts nearly all random samples."
                       + (" To see these codes up close, pick this model in the sidebar."
                          if model.config.beta > 0 else ""))
            grid_col, samples_col = st.columns(2)
            with grid_col:
                pictures.show(latent_views.manifold_image(name, 10, 3.0),
                              "Decoded grid over [-3, 3]²", scale=1, width="stretch")
            with samples_col:
                pictures.show_grid(model.generate(list(range(16)), seed=1), cols=4, scale=2,
                                   caption="16 random samples, z ~ N(0, I)")


def training_history(model, snapshots):
    """Play how the model's map and samples changed, epoch by epoch, as it trained."""
    names = catalog.class_names(model)
    st.caption(
        f"The same {len(snapshots.labels)} test images and the same style sample after each of "
        f"the {len(snapshots)} epochs this model trained"
        + (" (its latent has more than two dimensions, so each epoch is shown through its own "
           "PCA, axes flipped where needed to match the epoch before)." if snapshots.is_pca
           else ".")
        + " Press ▶ Play, or drag an epoch slider.")
    lim = 1.05 * history.extent(snapshots)
    titles = ("PCA axis 1", "PCA axis 2") if snapshots.is_pca else ("z₁", "z₂")
    map_col, samples_col = st.columns([3, 2], gap="large")
    with map_col:
        st.plotly_chart(charts.history_animation(snapshots, names, lim, axis_titles=titles),
                        key=f"history_{catalog.active_key()}")
    with samples_col:
        epochs = [int(e) for e in snapshots.epochs]
        epoch = (st.select_slider("Epoch", epochs, value=epochs[-1], key="history_epoch")
                 if len(epochs) > 1 else epochs[0])
        i = epochs.index(epoch)
        pictures.show_grid(snapshots.samples[i] / 255.0, scale=2, width="stretch",
                           caption=f"Epoch {epoch}: one fixed style"
                                   + (" written as each class." if model.config.conditional
                                      else " (ten samples from the prior)."))
        st.download_button(
            "Download the history as a GIF",
            latent_views.history_gif(str(catalog.active_key()), snapshots, len(snapshots)),
            file_name="vae-lab-training-history.gif", mime="image/gif",
            icon=":material/download:", key="history_gif")


st.title("Latent space")
active = catalog.active_model()
snapshots = getattr(active, "training_snapshots", None) if active is not None else None
tab_names = ["Explore the active model", "KL on vs KL off"]
if snapshots is not None and len(snapshots):
    tab_names.append("Training history")  # only models trained since history was recorded
# Only the tab on screen runs: a touch in one tab does not redraw the others.
tabs = st.tabs(tab_names, key="latent_tab", on_change="rerun")
if tabs[0].open is not False:
    with tabs[0], errors.friendly_errors():
        explore_active_model()
if tabs[1].open:
    with tabs[1], errors.friendly_errors():
        compare_kl()
if len(tabs) > 2 and tabs[2].open:
    with tabs[2], errors.friendly_errors():
        training_history(active, snapshots)
