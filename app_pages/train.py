"""Train: set up an experiment, run it in the background, and watch the model learn."""

import streamlit as st

from ui import charts, errors, jobs, models, pictures
from vae_core.config import ARCHITECTURES, DATASETS, RECON_LOSSES, VAEConfig, parse_hidden
from vae_core.data import CLASS_NAMES, DISPLAY_NAMES

ARCH_NAMES = {"mlp": "MLP (fast)", "conv": "Convolutional (slower)"}
LOSS_NAMES = {"bce": "Binary cross-entropy", "mse": "Squared error"}


def settings_form(running: bool) -> VAEConfig | None:
    """The experiment settings (kept while you visit other pages); a config when Start is hit."""
    keep = "session"
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
                     "organise itself on a plane; 8–20 gives sharper images. For a "
                     "class-conditioned model keep it small (2–4): a roomy style also learns "
                     "the digit, and the decoder then stops obeying the digit you ask for.")
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
                     "Cross-entropy is the usual choice.")
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
        start = st.form_submit_button("Start training", type="primary", disabled=running,
                                      icon=":material/play_arrow:")
    if not start:
        return None
    return VAEConfig(dataset=dataset, arch=arch, latent_dim=int(latent_dim),
                     conditional=conditional, beta=float(beta), kl_warmup_epochs=int(warmup),
                     recon_loss=recon_loss, hidden=parse_hidden(hidden),
                     learning_rate=float(learning_rate), batch_size=int(batch_size),
                     epochs=int(epochs), seed=int(seed))


def status_line(job, snap):
    """Progress bar with epoch, batch and time left, and the Stop button."""
    bar_col, stop_col = st.columns([6, 1], vertical_alignment="bottom")
    with bar_col:
        if snap.status == "pending":
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
        st.button("Stop", icon=":material/stop:", on_click=job.stop, key="train_stop",
                  disabled=not job.running or snap.status == "stopping",
                  help="Stops within one batch; the model trained so far is kept.")


def epoch_previews(snap):
    """The model after each epoch: samples, reconstructions, latent scatter; scrubbable."""
    shown = snap.epochs[-1]
    if len(snap.epochs) > 1:
        number = st.columns(2)[0].slider(
            "Epoch", 1, len(snap.epochs), len(snap.epochs),
            help="Scrub through the epochs to watch the model improve.")
        shown = snap.epochs[number - 1]
    names = CLASS_NAMES[snap.config.dataset]
    columns = st.columns(3 if shown.latent_means is not None else 2, gap="medium")
    with columns[0]:
        st.markdown(f"**Samples after epoch {shown.epoch}**")
        pictures.show_grid(shown.samples, cols=5, width="stretch",
                     caption=("0–9 drawn with one shared style" if snap.config.conditional
                              else "Ten random samples from the prior"))
    with columns[1]:
        st.markdown("**Originals (top) and reconstructions**")
        pictures.show_grid([snap.preview_originals, shown.reconstructions], width="stretch",
                     caption="The same test images every epoch")
    if shown.latent_means is not None:
        lim = max(3.0, max(float(abs(e.latent_means).max()) for e in snap.epochs))
        with columns[2]:
            st.markdown("**Where 1,000 test images land in the latent space**")
            st.plotly_chart(charts.latent_scatter(shown.latent_means, snap.preview_labels,
                                                  names, lim, height=380, legend_on_top=True))


def result_panel(job, snap):
    """After the run: test metrics, 'use this model', and the checkpoint download."""
    if snap.status == "failed":
        return st.error(snap.reason, icon=":material/error:")
    entry = jobs.finished_entry(job)
    if entry is None:
        return None
    st.subheader("Result")
    metrics = jobs.evaluation(entry)
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
                  on_click=models.use_model, args=(entry.key,), key="train_use",
                  disabled=models.active_key() == entry.key,
                  help="Make it the active model of the Generate and Latent pages.")
        st.download_button("Download checkpoint (.zip)", jobs.checkpoint_zip(entry),
                           file_name="vae_lab_model.zip", mime="application/zip",
                           icon=":material/download:", key="train_download")
    if models.active_key() == entry.key:
        st.caption("This is now the active model: see it on the Generate and Latent pages.")


st.title("Train")
st.caption("Training runs in the background: you can keep using the other pages, and come "
           "back here to watch. Closing the browser tab stops the run.")

job = jobs.current_job()
running = job is not None and job.running
if not running and jobs.job_slots().active >= jobs.job_slots().limit:
    st.info("Someone else is training a model on this server right now. You can set up your "
            "run; Start works again as soon as theirs finishes.", icon=":material/hourglass:")
with errors.friendly_errors():
    config = settings_form(running)
    if config is not None and not running:
        if jobs.start_training(config):
            st.rerun()  # redraw with Start disabled and the live view running
        else:
            st.warning("Another training run is using this server right now. To keep the app "
                       "responsive for everyone, only "
                       f"{jobs.job_slots().limit} run(s) at a time are allowed: please wait for "
                       "it to finish, then press Start again.", icon=":material/hourglass:")

if job is None:
    st.info("Choose your settings and press **Start training**. The defaults show readable "
            "digits within a minute.", icon=":material/info:")
else:
    @st.fragment(run_every=1.0 if running else None)
    def live_view():
        snap = job.progress.snapshot()
        if running and not job.running:
            st.rerun()  # just finished: redraw the whole page, and the sidebar's model list
        with errors.friendly_errors():
            st.markdown(f"**This run:** {DISPLAY_NAMES[snap.config.dataset]}, "
                        f"{models.describe(snap.config)}")
            status_line(job, snap)
            if snap.batches:
                st.plotly_chart(charts.loss_figure(snap.batches, snap.epochs,
                                                   snap.steps_per_epoch,
                                                   snap.config.conditional))
            if snap.epochs:
                epoch_previews(snap)

    live_view()
    if not running:
        with errors.friendly_errors():
            result_panel(job, job.progress.snapshot())
