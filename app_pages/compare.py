"""Compare: two to four models side by side: their training curves, the same styles drawn by
each, their latent maps on one scale, and the settings that tell them apart."""

import pandas as pd
import streamlit as st

from ui import catalog, charts, errors, latent_views, pictures


def _value(v):
    return ",".join(map(str, v)) if isinstance(v, tuple) else str(v)


def _metric(key, v):
    return f"{v:.1%}" if key == "classifier_accuracy" else f"{v:.1f}" if isinstance(v, float) \
        else str(v)


st.title("Compare")
choices = catalog.model_choices()
if len(choices) < 2:
    st.info("Comparing needs at least two models: train one on the Train page.",
            icon=":material/info:")
    st.stop()
default = [k for k in st.session_state.get(catalog.COMPARE, catalog.KL_PAIR) if k in choices]
picked = st.multiselect(
    "Models", list(choices), default=default[:4] or list(choices)[:2], format_func=choices.get,
    max_selections=4, key="compare_models",
    help="Shipped models, models you trained in this session, or checkpoints you loaded.")
if len(picked) < 2:
    st.info("Pick two to four models to compare.", icon=":material/info:")
    st.stop()
models = {key: catalog.get_model(key) for key in picked}
labels = {key: choices[key] for key in picked}

with errors.friendly_errors():
    st.subheader("How they learned")
    runs = [(labels[k], m.history_log) for k, m in models.items() if m.history_log]
    if runs:
        st.plotly_chart(charts.compare_curves(runs), key="compare_curves")
        st.caption("One colour per model; solid lines are the training images, dotted lines "
                   "the test images, after each epoch.")
    else:
        st.caption("These models kept no training history.")

with errors.friendly_errors():
    st.subheader("What sets them apart")
    configs = {labels[k]: m.config for k, m in models.items()}
    first = next(iter(configs.values()))
    fields = list(dict.fromkeys(f for c in configs.values() for f in first.differences(c)))
    rows = {f"setting: {f}": [_value(getattr(c, f)) for c in configs.values()] for f in fields}
    evaluations = [catalog.evaluation(k) for k in picked]
    for name, key in catalog.METRICS:
        values = [e.get(key) for e in evaluations]
        if any(v is not None for v in values):
            rows[name] = ["-" if v is None else _metric(key, v) for v in values]
    st.table(pd.DataFrame(rows, index=list(configs)).T)
    if not fields:
        st.caption("They were trained with the same settings.")


@st.fragment
def same_styles():
    """A new seed redraws only these pictures, not the charts and maps around them."""
    with errors.friendly_errors():
        st.subheader("The same styles, drawn by each")
        seed = st.number_input("Style seed", 0, 2**31 - 1, 0, key="compare_seed",
                               help="Each row is one seed: a conditional model writes that one "
                                    "style as every class; an unconditional one draws ten "
                                    "samples.")
        for column, (key, model) in zip(st.columns(len(models)), models.items()):
            with column:
                grid = model.generate_grid([int(seed) + i for i in range(3)], range(10))
                pictures.show_grid(grid, caption=labels[key], scale=1, width="stretch")


same_styles()

with errors.friendly_errors():
    st.subheader("Where they put the test images")
    shown = {k: m for k, m in models.items() if m.config.latent_dim >= 2}
    views = {k: latent_views.latent_view(k) for k in shown}
    lim = max([1.0] + [v.extent() for v in views.values()])  # one scale for every map
    for column, (key, view) in zip(st.columns(len(models)), views.items()):
        with column:
            st.plotly_chart(charts.latent_scatter(
                view.points, view.labels, catalog.class_names(shown[key]), lim,
                axis_titles=charts.axis_titles(view.projection), height=320,
                legend_on_top=True), key=f"compare_map_{key}")
            st.caption(labels[key])
    st.caption("The same square on every map, so a spread-out latent space looks spread out. "
               "Models with more than two latent dimensions are shown through their two main "
               "directions.")
