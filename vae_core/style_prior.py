"""An ex-post style prior: a full-covariance Gaussian mixture fitted by EM (numpy only).

A VAE's encoder does not fill N(0, I) evenly, so style codes drawn from N(0, I) often land where
no training image was ever encoded (the "prior hole") and decode to blurry, in-between shapes.
Fitting a mixture to where the encoded training styles really lie, and sampling from it instead,
gives much sharper samples without retraining (Ghosh et al. 2019, "From variational to
deterministic autoencoders").

Conditional models can also fit each class on its own (`fit_class_gaussians`), and keep some of
each class's encoded styles to sample a kernel density around them (`fit_class_anchors`); the
optimal-transport potentials let one noise vector pick the same place in every class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class GaussianMixture:
    weights: np.ndarray  # (K,), sums to 1
    means: np.ndarray  # (K, D)
    chols: np.ndarray  # (K, D, D), lower Cholesky factors of the covariances

    @property
    def covariances(self) -> np.ndarray:
        return self.chols @ np.swapaxes(self.chols, 1, 2)

    def log_prob(self, x) -> np.ndarray:
        """log p(x) per row of x (N, D)."""
        return _logsumexp(_component_log_probs(np.asarray(x, np.float64), self), axis=1)

    def sample(self, rng: np.random.Generator, n: int, temperature: float = 1.0) -> np.ndarray:
        """n samples (float32); temperature scales each component's spread (0 = its mean).

        Drawn row by row (a uniform for the component, then the noise), so the first m of n
        samples from a generator are the m samples it would give on its own.
        """
        cdf = np.cumsum(self.weights / self.weights.sum())
        d = self.means.shape[1]
        k, eps = np.empty(n, np.int64), np.empty((n, d))
        for i in range(n):
            k[i] = min(np.searchsorted(cdf, rng.random(), side="right"), len(cdf) - 1)
            eps[i] = rng.standard_normal(d)
        x = self.means[k] + temperature * np.einsum("nij,nj->ni", self.chols[k], eps)
        return x.astype(np.float32)


def fit_gmm(x, components: int, iterations: int = 60, seed: int = 0, reg: float = 1e-4,
            tol: float = 1e-3, max_points: int | None = 20_000) -> GaussianMixture:
    """Fit a K-component full-covariance mixture to x (N, D) by EM, from a k-means++-style start.

    `reg` is added to every covariance's diagonal (scaled by the data variance) so a component that
    collapses onto a few points stays invertible; fitting stops when the mean log-likelihood
    improves by less than `tol` nats. At most `max_points` rows (a seeded random subset) are used.
    """
    rng = np.random.default_rng(seed)
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or len(x) < components:
        raise ValueError(f"Need a (N, D) array with N >= {components} points, got {x.shape}.")
    if max_points and len(x) > max_points:
        x = x[rng.choice(len(x), max_points, replace=False)]
    n, d = x.shape
    floor = reg * max(float(x.var(0).mean()), 1e-12)
    means = _plus_plus_centres(x, components, rng)
    resp = np.zeros((n, components))
    resp[np.arange(n), ((x[:, None] - means[None]) ** 2).sum(-1).argmin(1)] = 1.0
    gmm = _m_step(x, resp, floor)
    previous = -np.inf
    for _ in range(iterations):
        log_p = _component_log_probs(x, gmm)
        log_norm = _logsumexp(log_p, axis=1)
        resp = np.exp(log_p - log_norm[:, None])
        gmm = _m_step(x, resp, floor)
        mean_ll = float(log_norm.mean())
        if mean_ll - previous < tol:
            break
        previous = mean_ll
    return gmm


def _plus_plus_centres(x, k, rng):
    centres = [x[rng.integers(len(x))]]
    dist = ((x - centres[0]) ** 2).sum(1)
    for _ in range(1, k):
        centres.append(x[rng.choice(len(x), p=dist / dist.sum())])
        dist = np.minimum(dist, ((x - centres[-1]) ** 2).sum(1))
    return np.stack(centres)


def _m_step(x, resp, floor) -> GaussianMixture:
    counts = resp.sum(0) + 1e-10
    means = (resp.T @ x) / counts[:, None]
    d = x.shape[1]
    chols = np.empty((len(counts), d, d))
    for j in range(len(counts)):
        diff = x - means[j]
        cov = (diff * resp[:, j, None]).T @ diff / counts[j]
        chols[j] = np.linalg.cholesky(cov + floor * np.eye(d))
    return GaussianMixture(counts / counts.sum(), means, chols)


def _component_log_probs(x, gmm: GaussianMixture) -> np.ndarray:
    """log(w_k N(x | mu_k, Sigma_k)) for every row and component: (N, K)."""
    n, d = x.shape
    out = np.empty((n, len(gmm.weights)))
    for j in range(len(gmm.weights)):
        # With Sigma = L L^T, the Mahalanobis distance is |L^-1 (x - mu)|^2.
        y = (x - gmm.means[j]) @ np.linalg.inv(gmm.chols[j]).T
        log_det = 2.0 * np.log(np.diag(gmm.chols[j])).sum()
        out[:, j] = (np.log(gmm.weights[j] + 1e-300)
                     - 0.5 * (d * np.log(2 * np.pi) + log_det + np.einsum("nd,nd->n", y, y)))
    return out


def _logsumexp(a, axis):
    m = a.max(axis=axis, keepdims=True)
    return (m + np.log(np.exp(a - m).sum(axis=axis, keepdims=True))).squeeze(axis)


def fit_class_gaussians(x, classes, num_classes: int, reg: float = 1e-4):
    """One full-covariance Gaussian per class: means (C, D) and lower Cholesky factors (C, D, D).

    A class with too few points for a covariance (fewer than D + 1) gets the Gaussian of all
    points, so a model that never reads some class still samples something sensible for it.
    """
    x = np.asarray(x, np.float64)
    classes = np.asarray(classes)
    d = x.shape[1]

    def gaussian(points):
        return points.mean(0), np.linalg.cholesky(np.cov(points.T).reshape(d, d) + reg * np.eye(d))

    pooled = gaussian(x)
    fits = [gaussian(x[classes == c]) if _has_own_gaussian(classes, c, d) else pooled
            for c in range(num_classes)]
    return np.stack([m for m, _ in fits]), np.stack([c for _, c in fits])


def _has_own_gaussian(classes, c, d) -> bool:
    """Enough points of class c (more than D) for a covariance of its own."""
    return int((classes == c).sum()) > d


def whiten(x, mean, chol) -> np.ndarray:
    """L^-1 (x - mean) row by row: a class's styles in the frame where its Gaussian is N(0, I)."""
    return np.linalg.solve(chol, (np.asarray(x, np.float64) - mean).T).T


NEVER = np.float32(-1e30)
"""The transport potential of a padding anchor: its cell is empty, so it is never chosen."""


def fit_class_anchors(x, classes, class_means, class_chols, per_class: int, seed: int = 0):
    """Kept styles for a class-matched kernel density: per class, `per_class` of its encoded
    styles in that class's whitened coordinates (L_c^-1 (x - mu_c)), with transport potentials.

    Returns anchors (C, per_class, D) and potentials (C, per_class), float32. A class with fewer
    points keeps them all and pads with copies that are never chosen (potential -1e30); a class
    too small for its own Gaussian (it got the pooled one) keeps styles of all classes.
    """
    x = np.asarray(x, np.float64)
    classes = np.asarray(classes)
    rng = np.random.default_rng(seed)
    c_count, d = len(class_means), x.shape[1]
    anchors = np.zeros((c_count, per_class, d), np.float32)
    potentials = np.full((c_count, per_class), NEVER, np.float32)
    for c in range(c_count):
        own = x[classes == c] if _has_own_gaussian(classes, c, d) else x
        keep = own[rng.choice(len(own), min(per_class, len(own)), replace=False)]
        white = whiten(keep, class_means[c], class_chols[c]).astype(np.float32)
        anchors[c, :len(white)], anchors[c, len(white):] = white, white[0]
        potentials[c, :len(white)] = transport_potentials(white, seed=seed + c)
    return anchors, potentials


def transport_potentials(anchors, seed: int = 0, iterations: int = 60, batch: int | None = None,
                         step: float = 3.0) -> np.ndarray:
    """Potentials g (M,) such that the cells {eps : argmax_i 2 eps.a_i - |a_i|^2 + g_i} of the
    anchors a_i hold equal N(0, I) mass: the semi-discrete optimal transport from N(0, I) to the
    anchors (squared-distance cost), by averaged stochastic ascent on its concave dual.

    Mapping a noise vector to its cell's anchor then picks every anchor equally often (plain
    nearest-neighbour picks favour outlying anchors several-fold), and nearby noise picks nearby
    anchors, so one noise vector means the same place in every class's whitened spread.
    """
    anchors = np.asarray(anchors, np.float32)
    rng = np.random.default_rng(seed)
    m, d = anchors.shape
    batch = batch or min(20_000, 20 * m)  # noise draws per step: about 20 per kept style
    g, total = np.zeros(m, np.float32), np.zeros(m, np.float64)
    for t in range(iterations):
        eps = rng.standard_normal((batch, d), dtype=np.float32)
        mass = np.bincount(transported_anchor(eps, anchors, g), minlength=m) / batch
        g += np.float32(step / np.sqrt(t + 1)) * (1.0 - m * mass).astype(np.float32)
        if t >= iterations // 2:
            total += g
    return (total / (iterations - iterations // 2)).astype(np.float32)


def transported_anchor(eps, anchors, potentials) -> np.ndarray:
    """Index of the anchor whose transport cell holds each row of eps (N, D)."""
    eps = np.asarray(eps, np.float32)
    anchors = np.asarray(anchors, np.float32)
    twice, offset = 2 * anchors.T, potentials - (anchors ** 2).sum(1)
    picked = np.empty(len(eps), np.int64)
    for start in range(0, len(eps), 2048):  # chunks that stay in cache: twice as fast
        scores = eps[start:start + 2048] @ twice
        scores += offset
        picked[start:start + 2048] = scores.argmax(1)
    return picked
