"""The loss terms, each described once: its name, the config field that weighs it, and the network
its gradient trains. `VAE` builds its trackers, its total and its gradient routing from `TERMS`.

Per image: reconstruction (summed over the 784 pixels) + beta * KL(q(z|x) || N(0, I)), plus, when
enabled, the terms below. A term that trains one network only is differentiated against that
network's weights alone, so e.g. the consistency loss cannot teach the classifier to read the
decoder's drawings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from keras import ops

from .config import VAEConfig
from .networks import PIXELS

EVERY_WEIGHT = "all"


@dataclass(frozen=True)
class LossTerm:
    name: str
    """The key in `VAE.compute_losses`' output, the tracker and the history."""
    weight: str | None
    """The VAEConfig field that weighs it (None: weight 1; "beta" reads the KL weight variable,
    which a warm-up ramps)."""
    trains: str
    """The VAE attribute of the network its gradient reaches, or "all"."""
    present: Callable[[VAEConfig], bool]
    tracked: bool = True
    """Reported per batch and epoch (False: only part of the total)."""


def _conditional(c: VAEConfig) -> bool:
    return c.conditional


def _adversary(c: VAEConfig) -> bool:
    return c.style_adversary_weight > 0


def _realism(c: VAEConfig) -> bool:
    return c.realism_weight > 0


TERMS = (
    LossTerm("reconstruction_loss", None, EVERY_WEIGHT, lambda c: True),
    LossTerm("kl_loss", "beta", EVERY_WEIGHT, lambda c: True),
    LossTerm("classification_loss", None, EVERY_WEIGHT, _conditional),
    # The adversary learns to read the class from the style; the encoder learns to leave it
    # guessing ("style_leak_loss", the adversary's cross-entropy to a uniform reading).
    LossTerm("adversary_loss", None, "style_adversary", _adversary),
    LossTerm("style_leak_loss", "style_adversary_weight", "encoder", _adversary, tracked=False),
    # Random classes decoded from other styles must be read as asked by the model's classifier.
    LossTerm("consistency_loss", "consistency_weight", "decoder",
             lambda c: c.consistency_weight > 0),
    # One critic pass serves both players: the critic learns real vs decoded, the decoder to
    # fool it (non-saturating: -log D(decoded)).
    LossTerm("critic_loss", None, "image_critic", _realism),
    LossTerm("realism_loss", "realism_weight", "decoder", _realism),
)
ACCURACIES = {"classification_loss": "accuracy", "adversary_loss": "adversary_accuracy"}
"""Display-only metrics reported beside a term."""


def terms_of(config: VAEConfig) -> tuple[LossTerm, ...]:
    return tuple(t for t in TERMS if t.present(config))


def tracker_names(config: VAEConfig) -> list[str]:
    """"loss" (the total), then each tracked term and the accuracy beside it."""
    names = ["loss"]
    for term in terms_of(config):
        if term.tracked:
            names.append(term.name)
            if term.name in ACCURACIES:
                names.append(ACCURACIES[term.name])
    return names


def kl_divergence(z_mean, z_log_var):
    """KL(N(mean, exp(log_var)) || N(0, I)) per latent dimension, in nats."""
    return -0.5 * (1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))


def reconstruction_loss(x, logits, kind: str):
    """Per-image reconstruction loss summed over pixels: Bernoulli NLL on grey levels, or SSE."""
    x = ops.reshape(x, (-1, PIXELS))
    logits = ops.reshape(logits, (-1, PIXELS))
    if kind == "bce":
        # Stable BCE from logits: softplus(l) - x*l  ==  -x log s(l) - (1-x) log(1-s(l)).
        per_pixel = ops.softplus(logits) - x * logits
    else:
        per_pixel = ops.square(x - ops.sigmoid(logits))
    return ops.sum(per_pixel, axis=1)
