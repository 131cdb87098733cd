import pytest

from vae_core.config import VAEConfig
from vae_core.evaluate import evaluate
from vae_core.training import train


@pytest.mark.parametrize("recon_loss", ["bce", "mse"])
def test_evaluation_reports_elbo_split_meaning_and_active_units(tiny_data, recon_loss):
    config = VAEConfig(conditional=True, latent_dim=3, hidden=(32,), batch_size=64, epochs=2,
                       recon_loss=recon_loss, learning_rate=3e-3)
    model = train(config, tiny_data, validate=False).model
    result = evaluate(model, tiny_data, batch_size=50)
    assert result["test_images"] == 128
    assert result["elbo"] == pytest.approx(-(result["reconstruction"] + result["kl"]), rel=1e-5)
    assert result["kl"] == pytest.approx(sum(result["kl_per_dim"]), rel=1e-3)
    assert 0 <= result["active_units"] <= 3
    assert result["active_units"] == sum(v > 0.01 for v in result["kl_per_dim"])
    assert 0.0 <= result["classifier_accuracy"] <= 1.0
    expected = "not an ELBO" if recon_loss == "mse" else "nats"
    assert expected in result["meaning"]


def test_untrained_model_has_kl_near_zero_and_no_accuracy_key(tiny_data):
    from vae_core.models import VAE

    model = VAE(VAEConfig(latent_dim=2, hidden=(8,)))
    result = evaluate(model, tiny_data)
    assert "classifier_accuracy" not in result
    assert result["kl"] < 1.0  # freshly initialised posteriors sit near the prior
    assert result["reconstruction"] > 100  # an untrained decoder explains little
