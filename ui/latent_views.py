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


def latent_view(model_key: str, n: int = LATENT_POINTS) -> LatentView:
    """The cached latent view of a model in the picker (raises for a 1-D latent)."""
    cache_key = model_key if model_key in trained_models() else str(checkpoint_dir() / model_key)
    return _latent_view(cache_key, get_model(model_key), n)


def selected_point(event) -> tuple[float, float] | None:
    """The latent point a scatter selection picks: a box's centre, or a clicked point."""
    selection = getattr(event, "selection", None) or {}
    for box in selection.get("box") or []:
        xs, ys = box.get("x") or [], box.get("y") or []
        if len(xs) == 2 and len(ys) == 2:
            return float(np.mean(xs)), float(np.mean(ys))
    points = selection.get("points") or []
    if points:
        return float(points[0]["x"]), float(points[0]["y"])
    return None


@st.cache_data(show_spinner="Drawing the training history…", max_entries=8)
def history_gif(model_key: str, _snapshots, epochs: int) -> bytes:
    """The training snapshots as an animated GIF (map above samples, one frame per epoch)."""
    from vae_core import history, images

    return images.to_gif(history.render_frames(_snapshots), duration_ms=700)
