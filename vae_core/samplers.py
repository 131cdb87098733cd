"""Where sampled styles come from: N(0, I), the fitted mixture, or each class's own styles.

A sampler takes a trained model and turns style seeds into decoder inputs; a seed alone fixes
a style, so for a conditional model one seed is one handwriting for every digit. The fitted
styles live in the model's own non-trainable weights (saved inside model.keras); `fit` fills
them after training (style_prior.py does the maths).
"""

from __future__ import annotations

import numpy as np
from keras import ops

from .config import NUM_CLASSES
from .style_prior import (GaussianMixture, fit_class_anchors, fit_class_gaussians, fit_gmm,
                          transported_anchor)

class Sampler:
    """N(0, temperature^2 I) styles: the VAE's own prior."""

    name = "normal"

    def __init__(self, model):
        self.model = model
        self.dim = model.config.latent_dim

    def styles(self, seed: int, n: int = 1, temperature: float = 1.0, digits=None) -> np.ndarray:
        """n style vectors (n, latent_dim) fixed by the seed alone."""
        rng = np.random.default_rng(int(seed))
        return (rng.standard_normal((n, self.dim)) * temperature).astype(np.float32)

    def grid_codes(self, seeds, digits, temperature: float = 1.0) -> np.ndarray:
        """Decoder inputs, row-major (seed by seed): conditional models write each seed's one
        style as every digit; unconditional ones draw len(digits) styles per seed."""
        digits = list(digits)
        if not self.model.config.conditional:
            return np.concatenate([self.styles(s, len(digits), temperature) for s in seeds])
        styles = np.concatenate([np.repeat(self.styles(s, 1, temperature), len(digits), axis=0)
                                 for s in seeds])
        return self.model.latent_codes(styles, digits * len(seeds))


class MixtureSampler(Sampler):
    """Styles from a Gaussian mixture fitted to where the encoder put the training images
    (Ghosh et al. 2019), so samples avoid N(0, I)'s empty regions."""

    name = "mixture"

    def __init__(self, model):
        super().__init__(model)
        self.mixture = fitted_mixture(model)
        if self.mixture is None:
            raise ValueError("This model has no fitted style mixture: sample with "
                             "sampler='normal', or train with style_prior_components > 0.")

    def styles(self, seed, n=1, temperature=1.0, digits=None):
        return self.mixture.sample(np.random.default_rng(int(seed)), n, temperature)


class ClassMatchedSampler(Sampler):
    """Each digit's own styles: a seed's noise is written into every class's fitted spread
    (mu_c + L_c eps), so a seed is the same place in each digit's range of styles and no digit
    is drawn in a hand only another digit has. With kept styles the noise is carried to one
    kept style of each class by the optimal transport map from N(0, I), then blurred."""

    name = "class"

    def __init__(self, model):
        super().__init__(model)
        fitted = fitted_class_styles(model)
        if fitted is None:
            raise ValueError("This model has no fitted class-matched styles: sample with "
                             "sampler='normal', or train with class_matched_styles on.")
        self.means, self.chols = fitted
        self.kept = model.config.class_style_anchors
        self.bandwidth = model.config.class_style_bandwidth
        self.draws = 2 if self.kept else 1  # the place in the spread, and the kernel's blur

    def styles(self, seed, n=1, temperature=1.0, digits=None):
        if digits is None or len(digits) != n:
            raise ValueError("Class-matched styles depend on the digit: pass one digit per "
                             "style (digits=...).")
        noise = np.random.default_rng(int(seed)).standard_normal((n, self.draws, self.dim))
        return self._matched(noise, digits, temperature)

    def grid_codes(self, seeds, digits, temperature=1.0):
        digits = list(digits)
        noise = np.stack([np.random.default_rng(int(s)).standard_normal((self.draws, self.dim))
                          for s in seeds])  # one noise per seed, for every digit
        styles = self._matched(np.repeat(noise, len(digits), axis=0), digits * len(seeds),
                               temperature)
        return self.model.latent_codes(styles, digits * len(seeds))

    def _matched(self, noise, digits, temperature) -> np.ndarray:
        """Row i: mu_d + temperature * L_d w, d = digits[i], w = noise[i, 0] (or the kept style
        whose transport cell holds noise[i, 0], plus the bandwidth times noise[i, 1])."""
        digits = check_digits(digits)
        noise = np.broadcast_to(np.asarray(noise, np.float64),
                                (len(digits), self.draws, self.dim))
        w = noise[:, 0]
        if self.kept:
            anchors, potentials = _stored(self.model, "class_style_anchors",
                                          "class_style_potentials")
            w = np.empty_like(w)
            for d in np.unique(digits):
                rows = digits == d
                kept = transported_anchor(noise[rows, 0], anchors[d], potentials[d])
                w[rows] = anchors[d][kept] + self.bandwidth * noise[rows, 1]
        return (self.means[digits] + temperature * np.einsum("nij,nj->ni", self.chols[digits], w)
                ).astype(np.float32)


SAMPLERS = {"class": ClassMatchedSampler, "mixture": MixtureSampler, "normal": Sampler}
"""Every sampler, in the order a model prefers them when fitted."""


def available(model) -> list[str]:
    """The samplers this model can use, its default first."""
    fitted = {"class": fitted_class_styles(model) is not None,
              "mixture": fitted_mixture(model) is not None}
    return [name for name in SAMPLERS if fitted.get(name, True)]


def get(model, name: str | None = None) -> Sampler:
    """The sampler `name` for this model (None: its default)."""
    name = name or available(model)[0]
    if name not in SAMPLERS:
        raise ValueError(f"Unknown sampler {name!r}: choose one of {', '.join(SAMPLERS)}.")
    return SAMPLERS[name](model)


def _stored(model, *names) -> list[np.ndarray]:
    """The model's stored style weights as numpy arrays, converted once (`fit` forgets them)."""
    cache = model.sampler_arrays
    for name in names:
        if name not in cache:
            cache[name] = np.asarray(ops.convert_to_numpy(getattr(model, name)))
    return [cache[name] for name in names]


def fitted_mixture(model) -> GaussianMixture | None:
    """The mixture stored in the model, or None (not configured, or not fitted yet)."""
    if not model.config.style_prior_components:
        return None
    weights, means, chols = _stored(model, "prior_weights", "prior_means", "prior_chols")
    if weights.sum() <= 0:
        return None
    return GaussianMixture(*(np.asarray(a, np.float64) for a in (weights, means, chols)))


def fitted_class_styles(model) -> tuple[np.ndarray, np.ndarray] | None:
    """The per-class style Gaussians stored in the model (means (10, D), Cholesky factors
    (10, D, D)), or None (not configured, or not fitted yet)."""
    if not model.config.class_matched_styles:
        return None
    means, chols = _stored(model, "class_style_means", "class_style_chols")
    if not chols.any():
        return None
    return np.asarray(means, np.float64), np.asarray(chols, np.float64)


def fit(model, images, seed: int | None = None) -> GaussianMixture | None:
    """Fit the style priors the model's config asks for (the mixture, the class Gaussians, the
    kept styles) to the encoded means of `images`, and store them in the model."""
    config = model.config
    if not (config.style_prior_components or config.class_matched_styles):
        raise ValueError("This model has no room for a style prior: set "
                         "style_prior_components > 0 or class_matched_styles in its config.")
    seed = config.seed if seed is None else seed
    model.sampler_arrays.clear()
    means, _ = model.encode(images)
    gmm = None
    if config.style_prior_components:
        gmm = fit_gmm(means, config.style_prior_components, seed=seed)
        set_mixture(model, gmm)
    if config.class_matched_styles:
        classes = model.classify(images).argmax(1)
        class_means, chols = fit_class_gaussians(means, classes, NUM_CLASSES)
        model.class_style_means.assign(class_means.astype(np.float32))
        model.class_style_chols.assign(chols.astype(np.float32))
        if config.class_style_anchors:
            anchors, potentials = fit_class_anchors(means, classes, class_means, chols,
                                                    config.class_style_anchors, seed=seed)
            model.class_style_anchors.assign(anchors)
            model.class_style_potentials.assign(potentials)
    return gmm


def set_mixture(model, gmm: GaussianMixture):
    k, d = model.config.style_prior_components, model.config.latent_dim
    if gmm.means.shape != (k, d):
        raise ValueError(f"This model stores a mixture of {k} components over {d} style dims, "
                         f"not one with means of shape {gmm.means.shape}.")
    model.sampler_arrays.clear()
    model.prior_weights.assign(np.asarray(gmm.weights, np.float32))
    model.prior_means.assign(np.asarray(gmm.means, np.float32))
    model.prior_chols.assign(np.asarray(gmm.chols, np.float32))


def check_digits(digits) -> np.ndarray:
    d = np.asarray(list(digits), dtype=np.int64)
    if d.size and (d.min() < 0 or d.max() >= NUM_CLASSES):
        raise ValueError(f"Digits must be between 0 and 9, got {list(digits)}.")
    return d
