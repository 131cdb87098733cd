"""The ex-post Gaussian-mixture style prior: EM fit, seeded sampling, storage inside the model."""

import numpy as np
import pytest

from vae_core import VAEConfig, load_checkpoint, save_checkpoint
from vae_core.models import VAE
from vae_core.style_prior import GaussianMixture, fit_gmm

TRUE_MEANS = np.array([[-4.0, 0.0], [4.0, 0.0], [0.0, 5.0]])
TRUE_WEIGHTS = np.array([0.5, 0.3, 0.2])


def known_mixture(n=6000, seed=0):
    rng = np.random.default_rng(seed)
    k = rng.choice(3, n, p=TRUE_WEIGHTS)
    scales = np.array([[1.0, 0.3], [0.5, 1.0], [0.7, 0.7]])
    return TRUE_MEANS[k] + rng.standard_normal((n, 2)) * scales[k]


def test_em_recovers_a_known_mixture():
    gmm = fit_gmm(known_mixture(), 3, seed=1)
    order = np.argsort(gmm.means[:, 0] + 0.01 * gmm.means[:, 1])  # -4, 0, +4 along x
    np.testing.assert_allclose(gmm.means[order], TRUE_MEANS[[0, 2, 1]], atol=0.1)
    np.testing.assert_allclose(gmm.weights[order], TRUE_WEIGHTS[[0, 2, 1]], atol=0.03)
    np.testing.assert_allclose(np.sqrt(gmm.covariances[order][0].diagonal()), [1.0, 0.3],
                               atol=0.05)
    # More likely than a single Gaussian fitted to the same points.
    x = known_mixture(seed=2)
    one = fit_gmm(x, 1)
    assert gmm.log_prob(x).mean() > one.log_prob(x).mean() + 0.5


def test_sampling_is_a_pure_function_of_the_seed():
    gmm = fit_gmm(known_mixture(), 3)
    a = gmm.sample(np.random.default_rng(5), 4000)
    np.testing.assert_array_equal(a, gmm.sample(np.random.default_rng(5), 4000))
    assert not np.allclose(a, gmm.sample(np.random.default_rng(6), 4000))
    refit = fit_gmm(a.astype(np.float64), 3)  # samples follow the mixture they came from
    assert np.abs(np.sort(refit.weights) - np.sort(gmm.weights)).max() < 0.05
    cold = gmm.sample(np.random.default_rng(5), 50, temperature=0.0)
    assert all(any(np.allclose(c, m, atol=1e-5) for m in gmm.means) for c in cold)


def test_too_few_points_is_a_clear_error():
    with pytest.raises(ValueError, match="N >= 5"):
        fit_gmm(np.zeros((3, 2)), 5)


def test_model_stores_the_mixture_and_it_survives_save_and_load(tmp_path, tiny_data):
    config = VAEConfig(conditional=True, encoder_conditional=True, latent_dim=3, hidden=(16,),
                       style_prior_components=4)
    model = VAE(config)
    assert model.style_prior is None and model.default_sampler() == "normal"
    with pytest.raises(ValueError, match="no fitted style mixture"):
        model.style_samples(0, 2, sampler="mixture")
    model.fit_style_prior(tiny_data.x_train)
    assert model.default_sampler() == "mixture"
    styles = model.style_samples(7, 3)
    np.testing.assert_array_equal(styles, model.style_samples(7, 3))
    assert not np.allclose(styles, model.style_samples(7, 3, sampler="normal"))
    grid = model.generate_grid([7, 8], range(10))
    # One seed, one style, every digit: the row decodes seed 7's first style with each one-hot.
    np.testing.assert_allclose(grid[0], model.decode(model.latent_codes(
        np.repeat(styles[:1], 10, axis=0), range(10))), atol=1e-6)
    with pytest.raises(ValueError, match="Unknown sampler"):
        model.generate_grid([1], [1], sampler="vamp")

    path = save_checkpoint(model, tmp_path / "ck")
    loaded = load_checkpoint(path)  # safe_mode
    np.testing.assert_allclose(loaded.style_prior.means, model.style_prior.means)
    np.testing.assert_allclose(loaded.generate_grid([7, 8], range(10)), grid, atol=1e-6)
    np.testing.assert_allclose(loaded.generate_grid([7], [2], sampler="normal"),
                               model.generate_grid([7], [2], sampler="normal"), atol=1e-6)


def test_set_style_prior_checks_the_size():
    model = VAE(VAEConfig(latent_dim=2, hidden=(8,), style_prior_components=2))
    wrong = GaussianMixture(np.ones(3) / 3, np.zeros((3, 2)), np.tile(np.eye(2), (3, 1, 1)))
    with pytest.raises(ValueError, match="2 components over 2 style dims"):
        model.set_style_prior(wrong)


def test_the_first_samples_do_not_depend_on_how_many_are_drawn():
    gmm = fit_gmm(known_mixture(), 3)
    many = gmm.sample(np.random.default_rng(3), 10)
    np.testing.assert_array_equal(gmm.sample(np.random.default_rng(3), 1), many[:1])
