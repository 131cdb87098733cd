"""Encoded test images on a plane (2-D latents as they are, larger ones through PCA), cached."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st

import vae_core
from vae_core import latent

from .catalog import checkpoint_dir, get_model, trained_models

LATENT_POINTS = 2000  # test images shown on latent scatters


@dataclass(frozen=True)
class LatentView:
    points: np.ndarray  # (n, 2)
    labels: np.ndarray  # (n,)
    projection: latent.Projection
    std: float  # spread of the encoded means (all latent dims pooled)

    def extent(self, quantile: float = 0.995) -> float:
        """A symmetric axis limit that holds nearly all points."""
        return float(np.quantile(np.abs(self.points), quantile))


@st.cache_resource(show_spinner="Encoding test images…", max_entries=32, ttl=3600)
def _latent_view(model_key: str, _model: vae_core.VAE, n: int) -> LatentView:
    data = vae_core.load_dataset(_model.config.dataset)
    idx = np.random.default_rng(0).choice(len(data.x_test), min(n, len(data.x_test)),
                                          replace=False)
    means = latent.encode_means(_model, data.x_test[idx])
    projection = latent.fit_projection(means)
    return LatentView(projection.to_2d(means), data.y_test[idx], projection,
                      float(means.std()))


def _cache_key(model_key: str) -> str:
    return model_key if model_key in trained_models() else str(checkpoint_dir() / model_key)


def latent_view(model_key: str, n: int = LATENT_POINTS) -> LatentView:
    """The cached latent view of a model in the picker (raises for a 1-D latent)."""
    return latent_view_of(_cache_key(model_key), get_model(model_key), n)


def latent_view_of(cache_key: str, model: vae_core.VAE, n: int = LATENT_POINTS) -> LatentView:
    return _latent_view(cache_key, model, n)


@st.cache_data(show_spinner=False, max_entries=64, ttl=3600)
def _manifold(cache_key: str, _model: vae_core.VAE, n: int, lim: float, digit) -> np.ndarray:
    view = latent_view_of(cache_key, _model)
    return latent.manifold(_model, n, lim, view.projection, digit)


def manifold_image(model_key: str, n: int, lim: float, digit=None) -> np.ndarray:
    """The decoded n x n grid over [-lim, lim]² of a model in the picker, computed once."""
    cache_key = _cache_key(model_key)
    return _manifold(cache_key, get_model(model_key), n, float(lim), digit)


@st.cache_data(show_spinner="Drawing the training history…", max_entries=8)
def history_gif(model_key: str, _snapshots, epochs: int) -> bytes:
    """The training snapshots as an animated GIF (map above samples, one frame per epoch)."""
    from vae_core import history, images

    return images.to_gif(history.render_frames(_snapshots), duration_ms=700)
