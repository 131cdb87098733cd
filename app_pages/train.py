"""Train: set up an experiment, run it in the background, and watch the model learn."""

import streamlit as st

from ui import charts, errors, runs, catalog
from vae_core.config import (ARCHITECTURES, AVERAGING_MOMENTUM, DATASETS, PRESETS, RECON_LOSSES,
                             VAEConfig, parse_hidden)
from vae_core import images
from vae_core.data import CLASS_NAMES, DISPLAY_NAMES

ARCH_NAMES = {"mlp": "MLP (fast)", "conv": "Convolutional (slower)"}
LOSS_NAMES = {"bce": "Binary cross-entropy", "mse": "Squared error"}
RECIPE_NAMES = {
    "sharp_conditional_mnist": "Roomy-style digit-conditioned MNIST (the shipped recipe)",
    "sharp_conditional_fashion": "Roomy-style garment-conditioned Fashion (the shipped recipe)",
}
CUSTOM = "custom"
# Form widget key -> how to read its value from a config (what a recipe fills in).
RECIPE_FIELDS = {
    "train_dataset": lambda c: c.dataset, "train_arch": lambda c: c.arch,
    "train_conditional": lambda c: c.conditional, "train_latent_dim": lambda c: c.latent_dim,
    "train_hidden": lambda c: ",".join(map(str, c.hidden)), "train_seed": lambda c: c.seed,
    "train_beta": lambda c: float(c.beta), "train_warmup": lambda c: c.kl_warmup_epochs,
    "train_recon_loss": lambda c: c.recon_loss, "train_epochs": lambda c: c.epochs,
    "train_batch_size": lambda c: c.batch_size, "train_lr": lambda c: c.learning_rate,
    "train_adam_beta1": lambda c: float(c.adam_beta1),
    "train_averaged": lambda c: c.ema_momentum > 0,
    "train_encoder_conditional": lambda c: c.encoder_conditional,
    "train_consistency": lambda c: float(c.consistency_weight),
    "train_prior_styles": lambda c: c.decoded_styles == "prior",
    "train_adversary": lambda c: float(c.style_adversary_weight),
    "train_realism": lambda c: float(c.realism_weight),
    "train_realism_recons": lambda c: c.realism_on_reconstructions,
    "train_conv_width": lambda c: c.conv_width,
    "train_critic_width": lambda c: c.critic_width,
    "train_detail_convs": lambda c: c.decoder_detail_convs,
    "train_prior_components": lambda c: c.style_prior_components,
    "train_class_styles": lambda c: c.class_matched_styles,
    "train_class_anchors": lambda c: c.class_style_anchors,
}


def apply_recipe():
    """Recipe picker callback: fill every setting from the chosen recipe (before the form draws)."""
    name = st.session_state.get("train_recipe")
    if name in PRESETS:
        for key, read in RECIPE_FIELDS.items():
            st.session_state[key] = read(PRESETS[name])


def recipe_picker():
    st.selectbox(
        "Start from a recipe", [CUSTOM, *PRESETS],
        format_func=lambda n: "Your own settings" if n == CUSTOM else RECIPE_NAMES.get(n, n),
        key="train_recipe", on_change=apply_recipe,
        help="Fills in every setting below with a recipe; you can still change any of them. "
             "The roomy-style recipes give a 16-D handwriting style (more variety, a better "
             "restyle of your own digit) that still obeys the digit selector; they are how the "
             "shipped conditional models were trained (measured in checkpoints/TUNING.md). "
             "Each takes about half an hour on two CPU cores.")


def settings_form(running: bool) -> VAEConfig | None:
    """The experiment settings (kept while you visit other pages); a config when Start is hit."""
    keep = "session"
    recipe_picker()
    with st.form("train_settings"):
        data_col, model_col, loss_col, run_col = st.columns(4, gap="medium")
        with data_col:
            dataset = st.selectbox(
                "Dataset", DATASETS, format_func=DISPLAY_NAMES.get, key="train_dataset",
                persist_state=keep, help="Handwritten digits, or small photos of clothes.")
            arch = st.radio(
                "Architecture", ARCHITECTURES, format_func=ARCH_NAMES.get, key="train_arch",
                persist_state=keep,
                help="MLP: dense layers, about 2 s per epoch on 2 cores. Convolutional: sharper "
                     "images, several times slower.")
            conditional = st.toggle(
                "Class-conditioned", value=False, key="train_conditional", persist_state=keep,
                help="Adds a classifier and tells the decoder which digit to draw, so you can "
                     "ask for one on the Generate page. The latent space then holds only style.")
        with model_col:
            latent_dim = st.number_input(
                "Style latent size", 1, 64, 2, key="train_latent_dim", persist_state=keep,
                help="How many numbers describe an image. 2 lets you watch the latent space "
                     "organise itself on a plane; 8–20 gives sharper images. A roomy style in a "
                     "class-conditioned model needs the encoder to see the class, the style "
                     "adversary and the class-consistency loss (below), or the decoder stops "
                     "obeying the digit you ask for: the roomy-style recipes set all three.")
            hidden = st.text_input(
                "Hidden layers", "512", key="train_hidden", persist_state=keep,
                help="Sizes of the dense layers, e.g. 512 or 512,256.")
            seed = st.number_input(
                "Seed", 0, 2**31 - 1, 0, key="train_seed", persist_state=keep,
                help="Fixes the initial weights and the data order.")
        with loss_col:
            beta = st.number_input(
                "β (KL weight)", 0.0, 10.0, 1.0, 0.1, format="%.1f", key="train_beta",
                persist_state=keep,
                help="How strongly codes are pulled towards N(0, I). 1 is a standard VAE; "
                     "0 switches KL off (a plain autoencoder that cannot sample well).")
            warmup = st.number_input(
                "KL warm-up epochs", 0, 50, 0, key="train_warmup", persist_state=keep,
                help="Ramp β up from 0 over this many epochs, so the decoder learns to use the "
                     "codes before KL squeezes them.")
            recon_loss = st.radio(
                "Reconstruction loss", RECON_LOSSES, format_func=LOSS_NAMES.get,
                key="train_recon_loss", persist_state=keep,
                help="How redrawing errors are counted, summed over the 784 pixels. "
                     "Cross-entropy is the usual choice for near-black-and-white digits; "
                     "the Gaussian, whose noise level follows the errors, keeps grey-level "
                     "textures (clothes) sharper.")
        with run_col:
            epochs = st.number_input(
                "Epochs", 1, 50, 5, key="train_epochs", persist_state=keep,
                help="Passes over the 60,000 training images.")
            batch_size = st.select_slider(
                "Batch size", [32, 64, 128, 256, 512], 128, key="train_batch_size",
                persist_state=keep, help="Images per update step.")
            learning_rate = st.select_slider(
                "Learning rate", [1e-4, 3e-4, 1e-3, 3e-3, 1e-2], 1e-3, format_func="{:g}".format,
                key="train_lr", persist_state=keep, help="Step size of the Adam optimiser.")
            adam_beta1 = st.number_input(
                "Adam momentum (β1)", 0.0, 0.99, 0.9, 0.1, format="%.2f", key="train_adam_beta1",
                persist_state=keep,
                help="How much of each step Adam carries over from the steps before (Keras's "
                     "default: 0.9). The Fashion-MNIST recipe uses 0.5, as adversarial training "
                     "often does, so the decoder and the realism critic overshoot each other "
                     "less; alone it tied with 0.9 there (checkpoints/TUNING.md).")
            averaged = st.toggle(
                "Finish on averaged weights", value=False, key="train_averaged",
                persist_state=keep,
                help="Keep a moving average of the weights over about the last 500 steps and "
                     "end the run on it, which smooths out the last steps' jitter. On the "
                     "Fashion-MNIST recipe it brought the samples much closer to real garments "
                     "(Fréchet distance 24.6x -> 18.1x the real-data floor) and raised the test "
                     "ELBO 2.6 nats, for epochs about 1.04x as long (measured in "
                     "checkpoints/TUNING.md). The live previews show the weights being "
                     "trained, not the average.")
        with st.expander("Conditional recipe and architecture details"):
            enc_col, cons_col, adv_col = st.columns(3, gap="medium")
            real_col, prior_col, temp_col, width_col = st.columns(4, gap="medium")
            encoder_conditional = enc_col.toggle(
                "Encoder sees the class", value=False, key="train_encoder_conditional",
                persist_state=keep,
                help="Class-conditioned models: the encoder also reads the classifier's answer, "
                     "q(z | x, class), so the style latent has no reason to store the digit.")
            consistency = cons_col.number_input(
                "Class-consistency weight", 0.0, 10.0, 0.0, 0.5, format="%.1f",
                key="train_consistency", persist_state=keep,
                help="Class-conditioned models: styles are decoded as random digits and the "
                     "model's own classifier must read the digit asked for; this weight adds "
                     "that to the loss (0 = off). Makes the decoder obey the digit slots.")
            prior_styles = cons_col.toggle(
                "Decode fresh N(0, I) styles", value=False, key="train_prior_styles",
                persist_state=keep,
                help="The class-consistency and realism terms decode random classes with new "
                     "N(0, I) style draws, the very styles the Generate page samples, instead of "
                     "the training images' own styles shuffled, so the decoder also learns the "
                     "gaps between training styles that samples land in. On the Fashion-MNIST "
                     "recipe with Adam β1 0.5 it brought the samples closer to real garments "
                     "(Fréchet distance 18.6x -> 14.0x the real-data floor; measured in "
                     "checkpoints/TUNING.md).")
            adversary = adv_col.number_input(
                "Style-adversary weight", 0.0, 20.0, 0.0, 0.5, format="%.1f",
                key="train_adversary", persist_state=keep,
                help="Class-conditioned models: a small network tries to read the digit from "
                     "the style code, and the encoder is trained to leave it guessing, so any "
                     "style can be drawn as any digit (0 = off).")
            realism = real_col.number_input(
                "Realism weight", 0.0, 20.0, 0.0, 0.5, format="%.1f",
                key="train_realism", persist_state=keep,
                help="A small critic learns to tell training images from decoded ones, and the "
                     "decoder is trained to fool it: sharp strokes instead of a grey blur "
                     "(0 = off). Slower per epoch.")
            realism_recons = real_col.toggle(
                "Critic judges reconstructions too", value=False, key="train_realism_recons",
                persist_state=keep,
                help="With the realism weight above 0: the critic also sees the model's "
                     "reconstructions of the batch, not only decoded random styles. Sharper "
                     "samples; on MNIST only together with class-matched styles (measured in "
                     "checkpoints/TUNING.md).")
            prior_components = prior_col.number_input(
                "Style mixture components", 0, 200, 0, key="train_prior_components",
                persist_state=keep,
                help="After training, fit a mixture of this many Gaussians to where the "
                     "training images' styles really lie, and sample new styles from it "
                     "instead of N(0, I): sharper samples (0 = off).")
            class_styles = prior_col.toggle(
                "Class-matched styles", value=False, key="train_class_styles",
                persist_state=keep,
                help="Class-conditioned models: after training, also fit each digit's own range "
                     "of styles, and write a seed's style into each digit's range instead of "
                     "drawing every digit from one shared style pool. On MNIST it brought the "
                     "samples much closer to real digits (measured in checkpoints/TUNING.md).")
            class_anchors = temp_col.number_input(
                "Kept styles per class", 0, 5000, 0, 250, key="train_class_anchors",
                persist_state=keep,
                help="With class-matched styles: keep this many training styles of each digit "
                     "and sample new styles close around them (a kernel density) instead of "
                     "from one Gaussian per digit; a seed still picks the same place in every "
                     "digit's range. Sharper samples on MNIST (measured in "
                     "checkpoints/TUNING.md). 0 = one Gaussian per digit.")
            conv_width = width_col.number_input(
                "Conv channels", 8, 128, 32, 8, key="train_conv_width", persist_state=keep,
                help="Convolutional models: channels of the first convolution (the second has "
                     "twice as many).")
            critic_width = width_col.number_input(
                "Critic channels", 8, 128, 16, 8, key="train_critic_width", persist_state=keep,
                help="With the realism weight above 0: channels of the critic's first "
                     "convolution (the second has twice as many). The Fashion-MNIST recipe's "
                     "64 draws sharper garments than 16, for epochs about 1.3x as long "
                     "(measured in checkpoints/TUNING.md).")
            detail_convs = width_col.number_input(
                "Decoder detail convolutions", 0, 4, 0, key="train_detail_convs",
                persist_state=keep,
                help="Convolutional models: extra 3x3 convolutions at full 28x28 resolution "
                     "before the decoder's last layer, room for detail finer than its 14x14 "
                     "features carry (a sandal's straps). On the Fashion-MNIST recipe with "
                     "fresh N(0, I) styles, one brought the samples closer to real garments "
                     "(Fréchet distance 14.0x -> 8.4x the real-data floor), for epochs about "
                     "1.28x as long (measured in checkpoints/TUNING.md).")
        start = st.form_submit_button("Start training", type="primary", disabled=running,
                                      icon=":material/play_arrow:")
    if not start:
        return None
    return VAEConfig(dataset=dataset, arch=arch, latent_dim=int(latent_dim),
                     conditional=conditional, beta=float(beta), kl_warmup_epochs=int(warmup),
                     recon_loss=recon_loss, hidden=parse_hidden(hidden),
                     learning_rate=float(learning_rate),
                     adam_beta1=float(adam_beta1),
                     ema_momentum=AVERAGING_MOMENTUM if averaged else 0.0,
                     batch_size=int(batch_size),
                     epochs=int(epochs), seed=int(seed),
                     # the class settings only mean something for a class-conditioned model
                     encoder_conditional=bool(encoder_conditional) and conditional,
                     consistency_weight=float(consistency) if conditional else 0.0,
                     decoded_styles="prior" if prior_styles else "shuffled",
                     style_adversary_weight=float(adversary) if conditional else 0.0,
                     realism_weight=float(realism),
                     # like the class settings: only meaningful with the critic on
                     realism_on_reconstructions=bool(realism_recons) and float(realism) > 0,
                     conv_width=int(conv_width), critic_width=int(critic_width),
                     # the MLP decoder has no feature maps to refine
                     decoder_detail_convs=int(detail_convs) if arch == "conv" else 0,
                     style_prior_components=int(prior_components),
                     class_matched_styles=bool(class_styles) and conditional,
                     class_style_anchors=(int(class_anchors) if class_styles and conditional
                                          else 0))


LIVE_REFRESH_SECONDS = 2.5
"""How often the live view redraws while a run is going. Each redraw costs the server and the
browser CPU that two cores would otherwise give to TensorFlow, so it is kept light and slow."""


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
    metrics = runs.evaluation(entry)
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
                       help="Latent dimensions the model actually uses (KL > 0.01 nats).")
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
    config = settings_form(running)
    if config is not None and not running:
        if runs.start_training(config):
            st.rerun()  # redraw with Start disabled and the live view running
        else:
            st.warning("The server is busy: "
                       f"{slots.limit} run(s) are training and {slots.queue} more are waiting, "
                       "which is all this server can hold without slowing down for everyone. "
                       "Please try again in a minute or two; your settings are kept.",
                       icon=":material/hourglass:")

if job is None:
    st.info("Choose your settings and press **Start training**. The defaults show readable "
            "digits within a minute.", icon=":material/info:")
else:
    # A queued run only needs its place in line now and then: with 8 visitors waiting, polling
    # every second would cost the one training run its CPU.
    queued = running and job.progress.snapshot().status == "queued"

    @st.fragment(run_every=(max(3.0, LIVE_REFRESH_SECONDS) if queued else LIVE_REFRESH_SECONDS)
                 if running else None)
    def live_view():
        snap = job.progress.snapshot()
        if running and not job.running:
            st.rerun()  # just finished: redraw the whole page, and the sidebar's model list
        with errors.friendly_errors():
            st.markdown(f"**This run:** {DISPLAY_NAMES[snap.config.dataset]}, "
                        f"{catalog.describe(snap.config)}")
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
            result_panel(job, job.progress.snapshot())
