"""The latent pad alone on a page, for tests/test_browser_decoder.py.

A small conditional conv decoder (int8 Dense layers, one detail convolution) on a 4-D latent, so
the map is a PCA plane. It is untrained, with its logits layer scaled up so that the pictures
vary across the map. With VAE_PAD_PARITY set to a path, the first run writes there (npz) random
decoder inputs with Keras's decode of them, and plane points with `latent.decode_points`.
"""

import json
import os
import warnings

import keras
import numpy as np
import streamlit as st

import vae_core
from ui.latent_pad import latent_pad, model_payload
from vae_core import latent


@st.cache_resource
def setup():
    keras.utils.set_random_seed(0)
    model = vae_core.VAE(vae_core.VAEConfig(arch="conv", conditional=True, latent_dim=4,
                                            hidden=(32,), conv_width=8, decoder_detail_convs=1))
    logits = model.decoder.get_layer("logits")
    logits.kernel.assign(logits.kernel * 60.0)  # untrained pictures are flat grey otherwise
    with warnings.catch_warnings():  # "Layer X does not have a `quantize` method": expected
        warnings.simplefilter("ignore")
        model.decoder.quantize("int8")
    rng = np.random.default_rng(0)
    means = (rng.normal(size=(300, 4)) * [2.0, 1.0, 0.5, 0.25]).astype(np.float32)
    projection = latent.fit_projection(means)
    points, labels = projection.to_2d(means), rng.integers(0, 10, len(means))
    if os.environ.get("VAE_PAD_PARITY"):
        z = rng.normal(0, 1.5, (64, 14)).astype(np.float32)
        z[:, 4:] = np.eye(10)[np.arange(64) % 10]
        plane = rng.uniform(-3, 3, (10, 2)).astype(np.float32)
        plane_decoded = [latent.decode_points(model, [p], projection, d)[0]
                         for d, p in enumerate(plane)]
        payload, model_hash = model_payload(model, points, labels, projection)
        np.savez(os.environ["VAE_PAD_PARITY"], z=z, decoded=model.decode(z), plane=plane,
                 plane_decoded=np.array(plane_decoded), hash=model_hash,
                 payload_bytes=len(payload))
    return model, points, labels, projection


model, points, labels, projection = setup()
st.title("Latent pad")
released = latent_pad("pad", model, points, labels, projection, [str(d) for d in range(10)],
                      lim=3.0, axis_titles=("PCA axis 1", "PCA axis 2"), digit=2,
                      star=(1.0, 1.0), point=(0.0, 0.0))
st.markdown(f"released: `{json.dumps(released)}`")
