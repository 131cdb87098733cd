"""Train: pick what to learn and for how long, press Start, and watch the model learn.

The first view has four controls; every other setting of `VAEConfig` sits in one collapsed
"Advanced settings" expander, filled in from the recipe (a preset) the first choices pick.
"""

import dataclasses

import streamlit as st

from ui import catalog, charts, errors, runs
from vae_core import images
from vae_core.checkpoints import CheckpointError, is_checkpoint, read_config_and_card
from vae_core.config import PRESETS, ConfigError, VAEConfig, parse_hidden
from vae_core.data import CLASS_NAMES, DISPLAY_NAMES

WHAT = {"mnist": "Digits", "fashion_mnist": "Clothes"}
HOW_LONG = ("minute", "five", "shipped")
RECIPES = {  # (dataset, takes a request, how long) -> preset
    ("mnist", True, "minute"): "quick_conditional_mnist",
    ("mnist", True, "five"): "longer_conditional_mnist",
    ("mnist", True, "shipped"): "sharp_conditional_mnist",
    ("fashion_mnist", True, "minute"): "quick_conditional_fashion",
    ("fashion_mnist", True, "five"): "longer_conditional_fashion",
    ("fashion_mnist", True, "shipped"): "sharp_conditional_fashion",
    ("mnist", False, "minute"): "quick_mnist",
    ("mnist", False, "five"): "longer_mnist",
    ("mnist", False, "shipped"): "mnist_2d_kl_on",
    ("fashion_mnist", False, "minute"): "quick_fashion",
    ("fashion_mnist", False, "five"): "longer_fashion",
    ("fashion_mnist", False, "shipped"): "fashion_2d_kl_on",
}
MAIN = ("dataset", "conditional")  # set by the first view's controls, not in the expander
# What the Advanced settings call each field, and what it does for the picture.
ADVANCED = {
    "arch": ("Architecture", "Dense layers are fast; convolutions draw sharper strokes but take "
                             "several times longer."),
    "latent_dim": ("Style size", "How many numbers describe a style. 2 lets you watch the map "
                                 "of styles organise itself; more gives sharper, more varied "
                                 "images."),
    "hidden": ("Hidden layers", "Sizes of the dense layers, e.g. 512 or 512,256."),
    "beta": ("β (KL weight)", "How tightly styles are packed around the centre. 1 is a standard "
                              "VAE; 0 switches KL off, so styles spread out with gaps that "
                              "decode to smudges."),
    "kl_warmup_epochs": ("KL warm-up epochs", "Let the model learn to redraw first and pack "
                                              "its styles later, over this many epochs."),
    "recon_loss": ("Redrawing error", "How a wrong pixel is counted: cross-entropy (bce) suits "
                                      "near black-and-white digits, squared error (mse) is "
                                      "gentler on grey."),
    "epochs": ("Epochs", "Passes over the 60,000 training images."),
    "batch_size": ("Batch size", "Images per learning step: larger batches take fewer, bigger "
                                 "steps."),
    "learning_rate": ("Learning rate", "Step size: too small learns slowly, too large can "
                                       "make training fall apart."),
    "adam_beta1": ("Momentum", "How much of each step carries over from the ones before."),
    "ema_momentum": ("Average the weights", "Finish on an average of the last few hundred "
                                            "steps, which smooths away their jitter (0 = off)."),
    "seed": ("Seed", "Fixes the starting weights and the order of the images: the same seed "
                     "trains the same model."),
    "encoder_conditional": ("Encoder sees the class", "The part that reads an image is told "
                                                      "its class too, so the style need not "
                                                      "store it."),
    "consistency_weight": ("Obey the request", "Random styles are drawn as random classes and "
                                               "the model's own classifier must read the one "
                                               "asked for (0 = off)."),
    "decoded_styles": ("Styles practised on", "Which styles the request and realism checks "
                                              "draw: the training images' own (shuffled) or "
                                              "fresh random ones, like the Generate page's."),
    "style_adversary_weight": ("Keep the class out of the style", "A small network tries to "
                                                                  "guess the class from the "
                                                                  "style and the model learns "
                                                                  "to hide it (0 = off)."),
    "realism_weight": ("Realism critic", "A small critic learns to tell real images from drawn "
                                         "ones, and the model learns to fool it: sharp strokes "
                                         "instead of a grey blur (0 = off). Slower."),
    "critic_width": ("Critic size", "Channels of the realism critic: wider sees more detail, "
                                    "and is slower."),
    "realism_on_reconstructions": ("Critic judges redrawings too", "The critic also sees the "
                                                                   "model's redrawings of the "
                                                                   "training images."),
    "conv_width": ("Convolution channels", "Width of the convolutions (convolutional models)."),
    "decoder_detail_convs": ("Fine-detail layers", "Extra full-size layers before the picture "
                                                   "is drawn, for detail such as a sandal's "
                                                   "straps (convolutional models)."),
    "style_prior_components": ("Fitted style groups", "After training, fit this many groups to "
                                                      "where real styles lie and draw new styles "
                                                      "from them (0 = off)."),
    "class_matched_styles": ("Each class's own styles", "After training, draw each class's "
                                                        "styles from that class's own range: a "
                                                        "seed is still one hand for every "
                                                        "class."),
    "class_style_anchors": ("Kept styles per class", "Keep this many real styles of each class "
                                                     "and draw new ones close around them "
                                                     "(0 = one smooth range per class)."),
    "class_style_bandwidth": ("Closeness to kept styles", "How far new styles may stray from "
                                                          "the kept real ones: smaller draws "
                                                          "closer to real handwriting, larger "
                                                          "invents more."),
}
SWEEPABLE = {"beta": "β (KL weight)", "latent_dim": "Style size",
             "recon_loss": "Redrawing error", "arch": "Architecture"}
SWEEP_EXAMPLES = {"beta": "0, 0.5, 1", "latent_dim": "2, 8, 16"}  # numeric fields' first values
FIELDS = {f.name: f for f in dataclasses.fields(VAEConfig)}


def recipe() -> VAEConfig:
    """The preset the first view's choices pick."""
    state = st.session_state
    return PRESETS[RECIPES[(state["train_dataset"], state["train_conditional"],
                            state["train_how_long"])]]


def fill_advanced():
    """Put the chosen recipe's value in every advanced setting (a callback: before they draw)."""
    config = recipe()
    for name in ADVANCED:
        value = getattr(config, name)
        st.session_state[f"adv_{name}"] = (",".join(map(str, value)) if name == "hidden"
                                           else value)


def shipped_minutes(preset: str) -> int | None:
    """Training minutes of the shipped model made with `preset`, from its card (read from the
    checkpoint files: no model is loaded for a label)."""
    for name in catalog.SHIPPED:
        folder = catalog.checkpoint_dir() / name
        if not is_checkpoint(folder):
            continue
        try:
            config, card = read_config_and_card(folder)
        except CheckpointError:
            continue
        if config == PRESETS[preset]:
            seconds = card.get("training_seconds")
            return round(seconds / 60) if seconds else None
    return None


def how_long_labels(dataset: str, conditional: bool) -> dict[str, str]:
    minutes = shipped_minutes(RECIPES[(dataset, conditional, "shipped")])
    return {"minute": "About a minute", "five": "About 5 minutes",
            "shipped": "The shipped recipe" + (f", about {minutes} minutes" if minutes else "")}


def first_view(running: bool):
    """What to learn, whether it takes requests, how long; then Start. True when pressed."""
    state = st.session_state
    state.setdefault("train_dataset", "mnist")
    state.setdefault("train_conditional", True)
    state.setdefault("train_how_long", "minute")
    if "adv_epochs" not in state:
        fill_advanced()
    what_col, request_col = st.columns(2, gap="medium")
    with what_col:
        st.segmented_control("What to learn", list(WHAT), format_func=WHAT.get, required=True,
                             key="train_dataset", on_change=fill_advanced,
                             help="Handwritten digits, or small photos of clothes.")
    thing = "digit" if state["train_dataset"] == "mnist" else "garment"
    with request_col:
        st.toggle(f"Draw the {thing} I ask for", key="train_conditional",
                  on_change=fill_advanced,
                  help=f"On: the model also learns to tell the {thing}s apart, so Generate can "
                       f"ask it for one {thing} in any style. Off: it learns a map of styles "
                       "you can watch organise itself as it trains.")
    labels = how_long_labels(state["train_dataset"], state["train_conditional"])
    st.segmented_control("How long", HOW_LONG, format_func=labels.get, required=True,
                         key="train_how_long", on_change=fill_advanced,
                         help="Longer training draws sharper, more varied images. The shipped "
                              "recipe is how the app's own models were made.")
    return st.button("Start training", type="primary", disabled=running,
                     icon=":material/play_arrow:", key="train_start")


def advanced_settings(running: bool):
    """Every other setting, filled in from the recipe; and a sweep over one of them. Returns
    ("start", config) or ("sweep", configs) when a sweep is queued, else None."""
    with st.expander("Advanced settings", expanded=False):
        st.caption("Filled in from your choices above; change any of them before Start.")
        columns = st.columns(3, gap="medium")
        for i, (name, (label, help_text)) in enumerate(ADVANCED.items()):
            with columns[i % 3]:
                setting_widget(name, label, help_text)
        st.markdown("**Try a sweep**: train the settings above two to four times, changing "
                    "one of them, and compare the runs side by side.")
        vary_col, values_col, go_col = st.columns([1, 2, 1], vertical_alignment="bottom")
        with vary_col:
            field = st.selectbox("Change", list(SWEEPABLE), format_func=SWEEPABLE.get,
                                 key="sweep_field", persist_state="session")
        with values_col:
            choices = FIELDS[field].metadata["choices"]
            if choices:
                values = st.multiselect("To each of", choices, default=list(choices),
                                        key=f"sweep_values_{field}", max_selections=4)
            else:
                values = st.text_input("To each of", SWEEP_EXAMPLES[field],
                                       key=f"sweep_values_{field}",
                                       help="Two to four values, separated by commas.")
        with go_col:
            queued = st.button("Queue the sweep", icon=":material/playlist_add:",
                               disabled=running, key="sweep_start")
    if queued:
        return "sweep", sweep_configs(field, values)
    return None


def setting_widget(name: str, label: str, help_text: str):
    meta, key = FIELDS[name].metadata, f"adv_{name}"
    kind = FIELDS[name].type
    if kind == "bool":
        st.toggle(label, key=key, help=help_text, persist_state="session")
    elif meta["choices"]:
        st.selectbox(label, meta["choices"], key=key, help=help_text, persist_state="session")
    elif kind == "int":
        st.number_input(label, meta["low"], meta["high"], step=1, key=key, help=help_text,
                        persist_state="session")
    elif kind == "float":
        low = meta["low"][0] if isinstance(meta["low"], tuple) else meta["low"]
        st.number_input(label, min_value=low, step=0.1 if name != "learning_rate" else 1e-4,
                        format="%g", key=key, help=help_text, persist_state="session")
    else:
        st.text_input(label, key=key, help=help_text, persist_state="session")


def chosen_config() -> VAEConfig:
    """The run the page describes: the first view's choices and every advanced setting."""
    state = st.session_state
    values = {name: state[f"adv_{name}"] for name in ADVANCED}
    values["hidden"] = parse_hidden(values["hidden"])
    for name, value in values.items():  # number inputs hand back floats for whole numbers too
        if FIELDS[name].type == "int" and isinstance(value, float) and value.is_integer():
            values[name] = int(value)
    return VAEConfig(dataset=state["train_dataset"], conditional=state["train_conditional"],
                     **values)


def sweep_configs(field: str, values) -> list[VAEConfig]:
    """The chosen run once per value of `field` (2 to 4 values)."""
    if isinstance(values, str):
        parse = int if FIELDS[field].type == "int" else float
        try:
            values = [parse(v) for v in values.replace(" ", "").split(",") if v]
        except ValueError:
            raise ConfigError(f"The sweep's values must be numbers separated by commas, like "
                              f"{SWEEP_EXAMPLES[field]}.") from None
    values = list(dict.fromkeys(values))
    if not 2 <= len(values) <= 4:
        raise ConfigError("A sweep trains two to four runs: give two to four different values.")
    base = chosen_config()
    return [base.replace(**{field: v}) for v in values]


# How often the live view redraws while a run is going. Each redraw costs the server and the
# browser CPU that two cores would otherwise give to TensorFlow, so it is kept light and slow.
LIVE_REFRESH_SECONDS = 2.5


def epoch_times_text(snap) -> str:
    """The app's own measured epoch times (bench/app_vs_cli.py reads this line)."""
    return "Seconds per epoch: " + ", ".join(f"{s:.2f}" for s in snap.epoch_seconds)


def status_line(job, snap):
    """Progress bar with epoch, batch and time left, the epoch times, and the Stop button."""
    bar_col, stop_col = st.columns([6, 1], vertical_alignment="bottom")
    with bar_col:
        if snap.status == "queued":
            ahead = snap.queue_position - 1
            text = ("Waiting for the training slot: "
                    + (f"{ahead} run(s) ahead of yours in the queue." if ahead
                       else "yours is next in the queue.")
                    + " It starts by itself; keep this tab open.")
        elif snap.status == "pending":
            text = "Starting: loading the data and building the model…"
        elif snap.status == "failed":
            text = "Training failed."
        elif snap.finished:
            text = snap.reason
        else:
            left = snap.seconds_left()
            text = (f"Epoch {min(snap.epoch + 1, snap.config.epochs)} of {snap.config.epochs} · "
                    f"batch {snap.batch} of {snap.steps_per_epoch}"
                    + (f" · about {left:.0f} s left" if left is not None else "")
                    + (" · stopping after this batch…" if snap.status == "stopping" else ""))
        done = snap.steps_done / snap.total_steps if snap.total_steps else 0.0
        st.progress(1.0 if snap.status == "done" else min(done, 1.0), text=text)
    with stop_col:
        queued = snap.status == "queued"
        st.button("Leave queue" if queued else "Stop", icon=":material/stop:", on_click=job.stop,
                  key="train_stop", disabled=not job.running or snap.status == "stopping",
                  help=("Gives up your place in the queue." if queued else
                        "Stops within one batch; the model trained so far is kept."))
    if snap.epoch_seconds:
        st.caption(epoch_times_text(snap),
                   help="Wall time of each finished epoch on this server, including the "
                        "test-set pass and the previews below.")


def _png(snap, epoch, kind, make) -> bytes:
    """PNG bytes of one epoch's picture, encoded once per run: later redraws send the same bytes
    (the same media URL), so neither the server nor the browser redoes the work."""
    cache = st.session_state.get("_train_pngs")
    if cache is None or cache.get("run") is not snap.epochs[0].samples:
        cache = st.session_state["_train_pngs"] = {"run": snap.epochs[0].samples}
    key = (epoch.epoch, kind)
    if key not in cache:
        cache[key] = make()
    return cache[key]


def epoch_previews(snap, live: bool = False):
    """The model after each epoch: samples, reconstructions, latent scatter; scrubbable.

    `live` (a run in progress): the latest epoch only, as static pictures encoded once per epoch;
    the slider and the interactive latent map come when the run has finished.
    """
    shown = snap.epochs[-1]
    if len(snap.epochs) > 1 and not live:
        number = st.columns(2)[0].slider(
            "Epoch", 1, len(snap.epochs), len(snap.epochs),
            help="Scrub through the epochs to watch the model improve.")
        shown = snap.epochs[number - 1]
    names = CLASS_NAMES[snap.config.dataset]
    columns = st.columns(3 if shown.latent_means is not None else 2, gap="medium")
    with columns[0]:
        st.markdown(f"**Samples after epoch {shown.epoch}**")
        st.image(_png(snap, shown, "samples", lambda: images.to_png(
                     images.tile(shown.samples, cols=5), scale=3)), width="stretch",
                 caption=("0–9 drawn with one shared style" if snap.config.conditional
                          else "Ten random samples from the prior"))
    with columns[1]:
        st.markdown("**Originals (top) and reconstructions**")
        st.image(_png(snap, shown, "reconstructions", lambda: images.to_png(
                     images.tile([snap.preview_originals, shown.reconstructions]), scale=3)),
                 width="stretch", caption="The same test images every epoch")
    if shown.latent_means is not None:
        lim = max(3.0, max(float(abs(e.latent_means).max()) for e in snap.epochs))
        with columns[2]:
            st.markdown("**Where 1,000 test images land in the latent space**")
            if live:
                st.image(_png(snap, shown, "latent", lambda: charts.latent_scatter_png(
                             shown.latent_means, snap.preview_labels, lim)), width="stretch",
                         caption="z₁ across, z₂ up; interactive when the run ends")
            else:
                st.plotly_chart(charts.latent_scatter(shown.latent_means, snap.preview_labels,
                                                      names, lim, height=380,
                                                      legend_on_top=True))


def result_panel(job, snap):
    """After the run: test metrics, 'use this model', and the checkpoint download."""
    if snap.status == "failed":
        return st.error(snap.reason, icon=":material/error:")
    if snap.status == "diverged":
        st.warning(snap.reason, icon=":material/warning:")
    entry = runs.finished_entry(job)
    if entry is None:
        return None
    st.subheader("Result")
    metrics = catalog.evaluation(entry.key)
    cols = st.columns(4)
    cols[0].metric("Test ELBO", f"{metrics['elbo']:.1f} nats",
                   help="Higher is better. " + metrics["meaning"])
    cols[1].metric("Reconstruction", f"{metrics['reconstruction']:.1f}",
                   help="Average redrawing error per test image (lower is better).")
    cols[2].metric("KL", f"{metrics['kl']:.2f} nats",
                   help="How far the codes are from N(0, I), per image.")
    if "classifier_accuracy" in metrics:
        cols[3].metric("Classifier accuracy", f"{metrics['classifier_accuracy']:.1%}")
    else:
        cols[3].metric("Active latent units", f"{metrics['active_units']} of "
                                              f"{metrics['latent_dim']}",
                       help="Latent dimensions the model actually uses; moving along the others "
                            "changes nothing in the picture.")
    st.caption(metrics["meaning"])
    with st.container(horizontal=True):
        st.button("Use this model", type="primary", icon=":material/check:",
                  on_click=catalog.use_model, args=(entry.key,), key="train_use",
                  disabled=catalog.active_key() == entry.key,
                  help="Make it the active model of the Generate and Latent pages.")
        st.download_button("Download checkpoint (.zip)", runs.checkpoint_zip(entry),
                           file_name="vae_lab_model.zip", mime="application/zip",
                           icon=":material/download:", key="train_download")
    if catalog.active_key() == entry.key:
        st.caption("This is now the active model: see it on the Generate and Latent pages.")


st.title("Train")
st.caption("Training runs in the background: you can keep using the other pages, and come "
           "back here to watch. Closing the browser tab stops the run.")

job = runs.current_job()
running = job is not None and job.running
slots = runs.job_slots()
if not running and not slots.has_room():
    st.info("The server is busy: every training slot and queue place is taken right now. You "
            "can set up your run; try Start again in a minute or two.",
            icon=":material/hourglass:")
elif not running and slots.active >= slots.limit:
    st.info("Someone else is training a model on this server right now. If you press Start, "
            f"your run waits in a queue ({slots.waiting} waiting) and starts by itself.",
            icon=":material/hourglass:")
with errors.friendly_errors():
    start = first_view(running)
    action = advanced_settings(running)
    if start:
        action = ("start", chosen_config())
    if action is not None and not running:
        if runs.start_training(action[1]):
            st.rerun()  # redraw with Start disabled and the live view running
        st.warning("The server is busy: "
                   f"{slots.limit} run(s) are training and {slots.queue} more are waiting, "
                   "which is all this server can hold without slowing down for everyone. "
                   "Please try again in a minute or two; your settings are kept.",
                   icon=":material/hourglass:")

if job is None:
    st.info("Press **Start training**: with these choices the live view shows readable "
            "digits after the first epoch, and the model is yours to use on the other pages "
            "when it finishes.", icon=":material/info:")
else:
    # A queued run only needs its place in line now and then: with 8 visitors waiting, polling
    # every second would cost the one training run its CPU.
    queued = running and job.progress.snapshot().status == "queued"
    finished_runs = sum(r is not None for r in job.results)

    @st.fragment(run_every=(max(3.0, LIVE_REFRESH_SECONDS) if queued else LIVE_REFRESH_SECONDS)
                 if running else None)
    def live_view():
        if running and (not job.running
                        or sum(r is not None for r in job.results) > finished_runs):
            st.rerun()  # a run finished: redraw the whole page, and the sidebar's model list
        snap = job.progress.snapshot()
        with errors.friendly_errors():
            sweep = runs.sweep_values(job.configs)
            st.markdown(f"**This run:** {DISPLAY_NAMES[snap.config.dataset]}, "
                        f"{catalog.describe(snap.config)}"
                        + (f" · sweep run {job.current + 1} of {len(job.configs)}: "
                           f"{sweep[job.current]}" if sweep else ""))
            status_line(job, snap)
            if snap.batches:
                st.plotly_chart(charts.loss_figure(snap.batches, snap.epochs,
                                                   snap.steps_per_epoch,
                                                   snap.config.conditional))
            if snap.epochs:
                epoch_previews(snap, live=running and not snap.finished)

    live_view()
    if not running:
        with errors.friendly_errors():
            if job.is_sweep and st.button("Compare the sweep's runs", type="primary",
                                          icon=":material/compare:", key="sweep_compare"):
                keys = [e.key for e in catalog.trained_models().values() if e.job is job]
                st.session_state[catalog.COMPARE] = st.session_state["compare_models"] = keys
                st.switch_page("app_pages/compare.py")
            result_panel(job, job.progress.snapshot())
