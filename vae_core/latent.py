"""Latent-space utilities: encode to means, project to 2-D, decode grids, interpolate."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .models import VAE


def encode_means(model: VAE, images) -> np.ndarray:
    """Posterior means of many images, in large batches."""
    return model.encode(images)[0]


@dataclass(frozen=True)
class Projection:
    """A linear map latent <-> 2-D plane: identity for 2-D latents, else PCA of the means.

    `to_latent` maps a 2-D point back onto the plane through the data mean, so a point picked
    on a PCA scatter can be decoded.
    """

    center: np.ndarray  # (latent_dim,)
    components: np.ndarray  # (2, latent_dim), orthonormal rows
    explained: tuple[float, float]  # fraction of variance per axis (1.0, 0.0 for 2-D latents)

    @property
    def is_identity(self) -> bool:
        return self.components.shape[1] == 2 and np.allclose(self.components, np.eye(2))

    def to_2d(self, z) -> np.ndarray:
        return (np.asarray(z, np.float32) - self.center) @ self.components.T

    def to_latent(self, points) -> np.ndarray:
        return (self.center + np.atleast_2d(points) @ self.components).astype(np.float32)


def fit_projection(means: np.ndarray) -> Projection:
    dim = means.shape[1]
    if dim == 1:
        raise ValueError("A 1-D latent cannot be shown on a plane.")
    if dim == 2:
        return Projection(np.zeros(2, np.float32), np.eye(2, dtype=np.float32), (1.0, 0.0))
    center = means.mean(axis=0)
    _, s, vt = np.linalg.svd(means - center, full_matrices=False)
    var = s**2 / np.sum(s**2)
    return Projection(center.astype(np.float32), vt[:2].astype(np.float32),
                      (float(var[0]), float(var[1])))


def grid_points(n: int, lim: float) -> np.ndarray:
    """n*n points on [-lim, lim]^2, row-major with y decreasing (top row = largest y), as shown."""
    axis = np.linspace(-lim, lim, n, dtype=np.float32)
    xs, ys = np.meshgrid(axis, axis[::-1])
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


def decode_points(model: VAE, points_2d, projection: Projection | None = None,
                  digit: int | None = None) -> np.ndarray:
    """Decode 2-D plane points (one batched call); conditional models need the class `digit`."""
    z = projection.to_latent(points_2d) if projection is not None else np.atleast_2d(points_2d)
    if model.config.conditional:
        z = model.latent_codes(z, [0 if digit is None else digit] * len(z))
    return model.decode(z)


def manifold(model: VAE, n: int = 15, lim: float = 3.0, projection: Projection | None = None,
             digit: int | None = None) -> np.ndarray:
    """The decoded n x n grid over [-lim, lim]^2, as an (n*28, n*28) image."""
    images = decode_points(model, grid_points(n, lim), projection, digit)
    return images.reshape(n, n, 28, 28).transpose(0, 2, 1, 3).reshape(n * 28, n * 28)


def interpolate(z_start, z_end, steps: int = 10) -> np.ndarray:
    """Straight-line points from z_start to z_end inclusive, shape (steps, dim)."""
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    return (1 - t) * np.asarray(z_start, np.float32) + t * np.asarray(z_end, np.float32)


def decoder_inputs(model: VAE, images) -> np.ndarray:
    """What the decoder needs to redraw `images`: their posterior means, plus the classifier's
    class slots for conditional models (the same code a reconstruction decodes)."""
    means = encode_means(model, images)
    if model.config.conditional:
        means = np.concatenate([means, model.classify(images)], axis=1)
    return means


def morph(model: VAE, z_start, z_end, steps: int = 10) -> np.ndarray:
    """Decoded images (steps, 28, 28) along the straight line between two decoder inputs."""
    return model.decode(interpolate(z_start, z_end, steps))
