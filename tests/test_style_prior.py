"""The ex-post Gaussian-mixture style prior: EM fit, seeded sampling, storage inside the model."""

import numpy as np
import pytest

from vae_core import VAEConfig, load_checkpoint, save_checkpoint, samplers
from vae_core.models import VAE
from vae_core.style_prior import (NEVER, GaussianMixture, fit_class_anchors, fit_class_gaussians,
                                  fit_gmm, transport_potentials, transported_anchor)

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
    assert samplers.fitted_mixture(model) is None and samplers.available(model)[0] == "normal"
    with pytest.raises(ValueError, match="no fitted style mixture"):
        samplers.get(model, "mixture").styles(0, 2)
    samplers.fit(model, tiny_data.x_train)
    assert samplers.available(model)[0] == "mixture"
    styles = samplers.get(model).styles(7, 3)
    np.testing.assert_array_equal(styles, samplers.get(model).styles(7, 3))
    assert not np.allclose(styles, samplers.get(model, "normal").styles(7, 3))
    grid = model.generate_grid([7, 8], range(10))
    # One seed, one style, every digit: the row decodes seed 7's first style with each one-hot.
    np.testing.assert_allclose(grid[0], model.decode(model.latent_codes(
        np.repeat(styles[:1], 10, axis=0), range(10))), atol=1e-6)
    with pytest.raises(ValueError, match="Unknown sampler"):
        model.generate_grid([1], [1], sampler="vamp")

    path = save_checkpoint(model, tmp_path / "ck")
    loaded = load_checkpoint(path)  # safe_mode
    np.testing.assert_allclose(samplers.fitted_mixture(loaded).means,
                               samplers.fitted_mixture(model).means)
    np.testing.assert_allclose(loaded.generate_grid([7, 8], range(10)), grid, atol=1e-6)
    np.testing.assert_allclose(loaded.generate_grid([7], [2], sampler="normal"),
                               model.generate_grid([7], [2], sampler="normal"), atol=1e-6)


def test_set_style_prior_checks_the_size():
    model = VAE(VAEConfig(latent_dim=2, hidden=(8,), style_prior_components=2))
    wrong = GaussianMixture(np.ones(3) / 3, np.zeros((3, 2)), np.tile(np.eye(2), (3, 1, 1)))
    with pytest.raises(ValueError, match="2 components over 2 style dims"):
        samplers.set_mixture(model, wrong)


def test_the_first_samples_do_not_depend_on_how_many_are_drawn():
    gmm = fit_gmm(known_mixture(), 3)
    many = gmm.sample(np.random.default_rng(3), 10)
    np.testing.assert_array_equal(gmm.sample(np.random.default_rng(3), 1), many[:1])


def test_class_gaussians_fit_each_class_and_fall_back_to_all_points():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-3, 0.5, (400, 2)), rng.normal(4, 2.0, (400, 2))])
    classes = np.repeat([0, 1], 400)
    means, chols = fit_class_gaussians(x, classes, 3)
    assert means.shape == (3, 2) and chols.shape == (3, 2, 2)
    np.testing.assert_allclose(means[:2], [[-3, -3], [4, 4]], atol=0.3)
    stds = np.sqrt(np.diagonal(chols @ np.swapaxes(chols, 1, 2), axis1=1, axis2=2))
    np.testing.assert_allclose(stds[:2], [[0.5, 0.5], [2.0, 2.0]], rtol=0.15)
    np.testing.assert_allclose(means[2], x.mean(0))  # class 2 never seen: all points


def test_class_matched_styles_write_one_noise_into_each_digits_spread(tmp_path, tiny_data):
    config = VAEConfig(conditional=True, encoder_conditional=True, latent_dim=3, hidden=(16,),
                       style_prior_components=2, class_matched_styles=True)
    model = VAE(config)
    assert samplers.fitted_class_styles(model) is None
    assert samplers.available(model)[0] == "normal"
    with pytest.raises(ValueError, match="no fitted class-matched styles"):
        model.generate_grid([0], [1], sampler="class")
    samplers.fit(model, tiny_data.x_train)
    assert samplers.available(model) == ["class", "mixture", "normal"]
    means, chols = samplers.fitted_class_styles(model)
    encoded, _ = model.encode(tiny_data.x_train)
    read = model.classify(tiny_data.x_train).argmax(1)
    c = np.bincount(read).argmax()  # the class the untrained classifier reads most
    np.testing.assert_allclose(means[c], encoded[read == c].mean(0), atol=1e-5)

    grid = model.generate_grid([7, 8], range(10), temperature=0.5)
    eps = samplers.get(model, "normal").styles(7, 1, 1.0)[0]  # seed 7's noise, shared by its row
    styles = means + 0.5 * np.einsum("cij,j->ci", chols, eps)
    np.testing.assert_allclose(grid[0], model.decode(model.latent_codes(styles, range(10))),
                               atol=1e-5)
    np.testing.assert_allclose(  # the same style draw as style_samples gives, digit by digit
        samplers.get(model, "class").styles(7, 10, 0.5, digits=range(10))[3],
        means[3] + 0.5 * chols[3] @ samplers.get(model, "normal").styles(7, 10, 1.0)[3],
        atol=1e-5)
    with pytest.raises(ValueError, match="depend on the digit"):
        samplers.get(model, "class").styles(7, 2)
    assert not np.allclose(grid, model.generate_grid([7, 8], range(10), 0.5, "mixture"))

    loaded = load_checkpoint(save_checkpoint(model, tmp_path / "ck"))  # safe_mode
    np.testing.assert_allclose(samplers.fitted_class_styles(loaded)[1], chols, atol=1e-6)
    np.testing.assert_allclose(loaded.generate_grid([7, 8], range(10), temperature=0.5), grid,
                               atol=1e-6)


def cell_masses(anchors, potentials, n=100_000, seed=99):
    eps = np.random.default_rng(seed).standard_normal((n, anchors.shape[1]))
    return np.bincount(transported_anchor(eps, anchors, potentials), minlength=len(anchors)) / n


def test_transport_potentials_make_every_anchor_equally_likely():
    # Anchors spread wider than N(0, I): a nearest-anchor pick favours the outlying ones.
    anchors = np.random.default_rng(0).standard_normal((60, 3)) * 1.6
    plain = cell_masses(anchors, np.zeros(60)) * 60
    assert plain.max() > 3 and plain.min() < 0.2
    balanced = cell_masses(anchors, transport_potentials(anchors)) * 60
    assert 0.6 < balanced.min() and balanced.max() < 1.4  # (200 iterations: 0.93 to 1.07)


def test_class_anchors_are_whitened_training_styles_with_never_chosen_padding():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(-3, 0.5, (300, 2)), rng.normal(4, 2.0, (5, 2))])
    classes = np.array([0] * 300 + [1] * 5)
    means, chols = fit_class_gaussians(x, classes, 3)
    anchors, potentials = fit_class_anchors(x, classes, means, chols, per_class=40)
    assert anchors.shape == (3, 40, 2) and potentials.shape == (3, 40)
    # Un-whitened, class 0's kept styles are 40 distinct class-0 points.
    kept = means[0] + anchors[0] @ chols[0].T
    assert len(np.unique(kept.round(4), axis=0)) == 40
    assert all(np.abs(x[:300] - k).sum(1).min() < 1e-4 for k in kept)
    # Class 1 has 5 points (more than D = 2, so its own Gaussian): 5 kept, the rest padding.
    assert (potentials[1, :5] > NEVER).all() and (potentials[1, 5:] == NEVER).all()
    assert set(np.unique(cell_masses(anchors[1], potentials[1]).nonzero()[0])) <= set(range(5))
    # Class 2 was never read: it keeps styles of every class, in the pooled Gaussian's frame.
    np.testing.assert_allclose(means[2], x.mean(0))
    assert (potentials[2] > NEVER).all()


def test_kept_class_styles_sample_one_kernel_draw_per_seed_and_survive_saving(tmp_path,
                                                                             tiny_data):
    config = VAEConfig(conditional=True, latent_dim=3, hidden=(16,), class_matched_styles=True,
                       class_style_anchors=20, class_style_bandwidth=0.4)
    model = VAE(config)
    samplers.fit(model, tiny_data.x_train)
    means, chols = samplers.fitted_class_styles(model)
    anchors = np.asarray(model.class_style_anchors)
    potentials = np.asarray(model.class_style_potentials)
    assert (potentials > NEVER).any(axis=1).all()

    grid = model.generate_grid([7, 8], range(10), temperature=0.5)
    noise = np.random.default_rng(7).standard_normal((2, 3))  # seed 7: place, then blur
    styles = []
    for d in range(10):
        kept = anchors[d][transported_anchor(noise[:1], anchors[d], potentials[d])[0]]
        styles.append(means[d] + 0.5 * chols[d] @ (kept + 0.4 * noise[1]))
    np.testing.assert_allclose(grid[0], model.decode(model.latent_codes(styles, range(10))),
                               atol=1e-5)
    np.testing.assert_allclose(model.generate([4], seed=7, temperature=0.5)[0], grid[0, 4],
                               atol=1e-6)
    np.testing.assert_allclose(  # style_samples draws the same seed's noise the same way
        samplers.get(model, "class").styles(7, 1, 0.5, digits=[3])[0], styles[3], atol=1e-5)
    assert not np.allclose(grid[0], grid[1])

    loaded = load_checkpoint(save_checkpoint(model, tmp_path / "ck"))  # safe_mode
    np.testing.assert_array_equal(np.asarray(loaded.class_style_anchors), anchors)
    np.testing.assert_allclose(loaded.generate_grid([7, 8], range(10), temperature=0.5), grid,
                               atol=1e-6)
