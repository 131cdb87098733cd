"""Test-set evaluation: ELBO in nats per image (with what it means), accuracy, active units."""

from __future__ import annotations

import numpy as np

from .data import Dataset, load_dataset
from .models import VAE

ACTIVE_UNIT_THRESHOLD = 0.01  # nats of KL per latent dimension, averaged over the test set

_MEANING = {
    "bce": ("ELBO per test image in nats: E_q[log p(x|z)] - KL(q(z|x) || N(0, I)), one z sample "
            "per image, with a Bernoulli likelihood evaluated on grey-level pixels in [0, 1]. "
            "Higher is better. Grey-level BCE is not a normalised likelihood, so the figure is "
            "not comparable with binarized-MNIST NLL tables."),
    "mse": ("Negative training objective per test image: -(summed squared error + KL). The "
            "squared error is not a log-likelihood, so this is not an ELBO in nats; compare it "
            "only between MSE models."),
}


def evaluate(model: VAE, dataset: Dataset | None = None, batch_size: int = 1000) -> dict:
    """Evaluate on the test set. The KL term is always unweighted (beta = 1), whatever beta was."""
    import tensorflow as tf

    dataset = dataset or load_dataset(model.config.dataset)
    conditional = model.config.conditional

    @tf.function(reduce_retracing=True)
    def step(x, y):
        out = model.compute_losses(x, y, training=False)
        return (out["reconstruction_loss"], out["kl_per_dim"],
                out["accuracy"] if conditional else tf.zeros_like(out["kl_loss"]))

    recon, kl_dims, correct = [], [], []
    for start in range(0, len(dataset.x_test), batch_size):
        x = dataset.x_test[start:start + batch_size, ..., None]
        y = dataset.y_test[start:start + batch_size]
        r, k, c = step(tf.constant(x), tf.constant(y))
        recon.append(r.numpy()), kl_dims.append(k.numpy()), correct.append(c.numpy())
    recon = np.concatenate(recon)
    kl_per_dim = np.concatenate(kl_dims).mean(axis=0)
    result = {
        "dataset": model.config.dataset,
        "test_images": int(len(recon)),
        "elbo": float(-(recon.mean() + kl_per_dim.sum())),
        "reconstruction": float(recon.mean()),
        "kl": float(kl_per_dim.sum()),
        "recon_loss": model.config.recon_loss,
        "meaning": _MEANING[model.config.recon_loss],
        "active_units": int((kl_per_dim > ACTIVE_UNIT_THRESHOLD).sum()),
        "latent_dim": model.config.latent_dim,
        "kl_per_dim": [round(float(v), 4) for v in kl_per_dim],
    }
    if conditional:
        result["classifier_accuracy"] = float(np.concatenate(correct).mean())
    return result
