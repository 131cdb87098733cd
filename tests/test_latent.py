import numpy as np
import pytest

from vae_core import latent
from vae_core.config import VAEConfig
from vae_core.models import VAE


def test_two_d_latents_need_no_projection():
    proj = latent.fit_projection(np.random.default_rng(0).normal(size=(50, 2)))
    assert proj.is_identity
    pts = np.array([[1.0, -2.0]])
    np.testing.assert_allclose(proj.to_2d(pts), pts)
    np.testing.assert_allclose(proj.to_latent(pts), pts)


def test_pca_finds_the_main_axes_and_maps_back_onto_its_plane():
    rng = np.random.default_rng(0)
    plane = rng.normal(size=(500, 2)) * [5.0, 2.0]
    z = np.concatenate([plane, rng.normal(size=(500, 3)) * 0.01], axis=1) + 3.0
    proj = latent.fit_projection(z)
    assert not proj.is_identity
    assert proj.explained[0] > proj.explained[1] > 0.1
    assert abs(proj.components[0, 0]) > 0.99  # first axis = the widest direction
    back = proj.to_latent(proj.to_2d(z))
    assert np.abs(back - z).max() < 0.1  # nearly all variance lies in the plane
    with pytest.raises(ValueError):
        latent.fit_projection(np.zeros((5, 1)))


def test_grid_points_are_row_major_with_the_top_row_at_largest_y():
    pts = latent.grid_points(3, 2.0)
    assert pts.shape == (9, 2)
    np.testing.assert_allclose(pts[0], [-2.0, 2.0])
    np.testing.assert_allclose(pts[-1], [2.0, -2.0])


@pytest.mark.parametrize("conditional", [False, True])
def test_manifold_is_one_decoded_image_per_grid_cell(conditional):
    model = VAE(VAEConfig(latent_dim=2, hidden=(16,), conditional=conditional))
    image = latent.manifold(model, n=4, lim=2.0, digit=3)
    assert image.shape == (4 * 28, 4 * 28)
    cells = latent.decode_points(model, latent.grid_points(4, 2.0), digit=3)
    np.testing.assert_allclose(image[28:56, 56:84], cells[6], atol=1e-6)  # row 1, column 2


def test_manifold_through_a_pca_projection():
    model = VAE(VAEConfig(latent_dim=5, hidden=(16,)))
    proj = latent.fit_projection(np.random.default_rng(1).normal(size=(100, 5)))
    assert latent.manifold(model, n=3, lim=1.0, projection=proj).shape == (84, 84)


def test_interpolate_includes_both_ends():
    path = latent.interpolate([0.0, 0.0], [1.0, 2.0], steps=5)
    assert path.shape == (5, 2)
    np.testing.assert_allclose(path[0], [0, 0])
    np.testing.assert_allclose(path[-1], [1, 2])
    np.testing.assert_allclose(path[2], [0.5, 1.0])


def test_encode_means_of_many_images_in_batches(tiny_data):
    model = VAE(VAEConfig(latent_dim=2, hidden=(16,)))
    many = np.concatenate([tiny_data.x_train] * 5)  # 2560 > one inference batch
    means = latent.encode_means(model, many)
    assert means.shape == (2560, 2)
    np.testing.assert_allclose(means[:512], means[512:1024], atol=1e-5)


def test_morph_runs_from_one_image_to_the_other(tiny_data):
    from vae_core.config import VAEConfig
    from vae_core.models import VAE
    from vae_core.training import reconstruct

    model = VAE(VAEConfig(conditional=True, latent_dim=3, hidden=(16,)))
    x = tiny_data.x_test[:2]
    codes = latent.decoder_inputs(model, x)
    assert codes.shape == (2, 3 + 10)
    frames = latent.morph(model, codes[0], codes[1], steps=7)
    assert frames.shape == (7, 28, 28)
    np.testing.assert_allclose(frames[[0, -1]], reconstruct(model, x), atol=1e-5)
