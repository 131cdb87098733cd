"""The latent pad alone on a page, for bench/browser_decode.py: `?model=<name>` picks a shipped
checkpoint (from VAE_PAD_CHECKPOINTS) or "fresh_detail_conv", a conv model with one detail
convolution trained here for one epoch on 2000 MNIST images.

Each model, when first shown, writes VAE_PAD_BENCH_DIR/<name>.npz: its payload hash, 200 random
decoder inputs with Keras's decode of them, and plane points with `latent.decode_points`.
"""

import os
from pathlib import Path

import numpy as np
import streamlit as st

import vae_core
from ui.latent_pad import latent_pad, model_payload
from vae_core import latent

CHECKPOINTS = Path(os.environ.get("VAE_PAD_CHECKPOINTS", "checkpoints"))
FRESH = "fresh_detail_conv"
MAP_POINTS = 2000


@st.cache_resource(max_entries=8)
def setup(name: str):
    if name == FRESH:
        config = vae_core.VAEConfig(arch="conv", conditional=True, latent_dim=4, hidden=(32,),
                                    conv_width=8, decoder_detail_convs=1, epochs=1)
        model = vae_core.train(config, vae_core.load_dataset("mnist").head(2000),
                               validate=False).model
    else:
        model = vae_core.load_checkpoint(CHECKPOINTS / name)
    data = vae_core.load_dataset(model.config.dataset)
    rng = np.random.default_rng(0)
    idx = rng.choice(len(data.x_test), MAP_POINTS, replace=False)
    means = latent.encode_means(model, data.x_test[idx])
    projection = latent.fit_projection(means)
    points, labels = projection.to_2d(means), data.y_test[idx]
    z = rng.normal(0, 1.5, (200, model.config.decoder_input_dim)).astype(np.float32)
    if model.config.conditional:
        z[:, -10:] = np.eye(10)[rng.integers(0, 10, len(z))]
    plane = rng.uniform(-2, 2, (10, 2)).astype(np.float32)
    plane_decoded = [latent.decode_points(model, [p], projection, d)[0]
                     for d, p in enumerate(plane)]
    out = Path(os.environ.get("VAE_PAD_BENCH_DIR", "/tmp")) / f"{name}.npz"
    np.savez(out, z=z, decoded=model.decode(z), plane=plane, plane_decoded=plane_decoded,
             conditional=model.config.conditional,
             hash=model_payload(model, points, labels, projection)[1],
             payload_bytes=len(model_payload(model, points, labels, projection)[0]))
    return model, points, labels, projection


name = st.query_params.get("model", "mnist_conditional")
model, points, labels, projection = setup(name)
st.title(name)
lim = float(np.ceil(np.quantile(np.abs(points), 0.995) * 2) / 2)
titles = (("z₁", "z₂") if projection.is_identity else ("PCA axis 1", "PCA axis 2"))
released = latent_pad("pad", model, points, labels, projection,
                      vae_core.CLASS_NAMES[model.config.dataset], lim=lim, axis_titles=titles,
                      digit=3)
st.markdown(f"released: `{released}`")
