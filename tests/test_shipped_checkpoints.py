"""The shipped checkpoints: they load safely, generate sensibly, their cards' quality figures
are what the judge measures again, and make_all.sh would rebuild them from their presets.

The Frechet-distance re-check needs the test set (skipped when it is not cached).
"""

import json
import re
from pathlib import Path

import numpy as np
import pytest

import vae_core
from vae_core import samplers
from vae_core.config import PRESETS
from vae_core.quality import conditional_agreement, fd_report, load_judge

CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"
# folder -> (dataset, conditional, latent_dim or None for any, beta or None for any)
SHIPPED = {
    "mnist_conditional": ("mnist", True, None, None),
    "mnist_2d_kl_on": ("mnist", False, 2, 1.0),
    "mnist_2d_kl_off": ("mnist", False, 2, 0.0),
    "fashion_conditional": ("fashion_mnist", True, None, None),
    "fashion_2d_kl_on": ("fashion_mnist", False, 2, 1.0),
}
MAX_MB, MAX_TOTAL_MB = 6.0, 40.0
RECHECK_SEEDS = range(100)  # a quick re-check: 100 styles x 10 classes
CONDITIONAL = [n for n, spec in SHIPPED.items() if spec[1]]


@pytest.fixture(scope="module")
def models():
    return {name: vae_core.load_checkpoint(CHECKPOINTS / name) for name in SHIPPED}


def card(name):
    return json.loads((CHECKPOINTS / name / "card.json").read_text())


@pytest.mark.parametrize("name", SHIPPED)
def test_loads_safely_and_matches_its_folder_name(models, name):
    model = models[name]  # load_checkpoint uses keras.saving.load_model(..., safe_mode=True)
    dataset, conditional, latent_dim, beta = SHIPPED[name]
    assert isinstance(model, vae_core.VAE)
    assert model.config.dataset == dataset and model.config.conditional is conditional
    if latent_dim is not None:
        assert model.config.latent_dim == latent_dim
    if beta is not None:
        assert model.config.beta == beta


@pytest.mark.parametrize("name", SHIPPED)
def test_generates_right_shapes_and_ranges(models, name):
    model = models[name]
    images = model.generate(list(range(10)), seed=3)
    assert images.shape == (10, 28, 28) and images.dtype == np.float32
    assert np.isfinite(images).all() and images.min() >= 0 and images.max() <= 1
    assert images.max() > 0.5  # something is drawn, not a blank page
    np.testing.assert_array_equal(images, model.generate(list(range(10)), seed=3))
    grid = model.generate_grid(range(3), range(10))
    assert grid.shape == (3, 10, 28, 28)
    mean, log_var = model.encode(images)
    assert mean.shape == log_var.shape == (10, model.config.latent_dim)
    if model.config.conditional:
        probs = model.classify(images)
        assert probs.shape == (10, 10)
        np.testing.assert_allclose(probs.sum(1), 1, rtol=1e-4)


@pytest.mark.parametrize("name", CONDITIONAL)
def test_agreement_recomputed_with_the_stored_judge(models, name):
    model = models[name]
    judge = load_judge(model.config.dataset)  # checkpoints/judges/<dataset>.keras, safe_mode
    quick = conditional_agreement(model, judge, seeds=RECHECK_SEEDS)  # the card's first seeds
    assert quick["samples"] == 1000
    recorded = card(name)["quality"]["conditional"]
    assert quick["agreement"] == pytest.approx(recorded["agreement"], abs=0.02), quick
    np.testing.assert_allclose(quick["per_class_agreement"], recorded["per_class_agreement"],
                               atol=0.1)


@pytest.mark.parametrize("name", CONDITIONAL)
def test_frechet_distances_recomputed_with_the_stored_judge(models, name, request):
    model = models[name]
    dataset = request.getfixturevalue(model.config.dataset)  # skips when not cached
    judge = load_judge(model.config.dataset)
    quick = fd_report(model, judge, dataset, n=2000)  # 200 styles x 10 classes
    recorded = card(name)["quality"]["fd"]
    assert quick["sampler"] == recorded["sampler"] == samplers.available(model)[0]
    # Reconstructions always use the whole test set: the same figure up to float round-off.
    assert quick["reconstructions"] == pytest.approx(recorded["reconstructions"], rel=0.02)
    # 2,000 samples estimate FD with an upward bias (and noise): close to the 10,000-sample
    # figure, and still within the bar once the floor is measured with as few real images.
    assert recorded["samples"] * 0.8 <= quick["samples"] <= recorded["samples"] * 1.6, quick


def test_sizes_stay_small():
    sizes = {name: (CHECKPOINTS / name / "model.keras").stat().st_size / 2**20
             for name in SHIPPED}
    assert all(mb <= MAX_MB for mb in sizes.values()), sizes
    total = sum(f.stat().st_size for f in CHECKPOINTS.rglob("*") if f.is_file()) / 2**20
    assert total <= MAX_TOTAL_MB, total
    for judge in CHECKPOINTS.glob("judges/*.keras"):
        assert judge.stat().st_size <= 1.1 * 2**20, judge


def test_each_shipped_model_is_the_preset_make_all_builds_it_from(models):
    """Rebuilding with checkpoints/make_all.sh trains exactly the recipe each model was made
    with (the presets are the one place a recipe is written)."""
    script = (CHECKPOINTS / "make_all.sh").read_text()
    names = dict(re.findall(r"^\s*(\w+)\) echo (\w+) ;;", script, re.M))
    for name, model in models.items():
        preset = names.get(name, name)  # the 2-D models' presets carry their folder's name
        assert model.config == PRESETS[preset], name


def test_the_committed_model_cards_are_what_write_readmes_writes():
    """A card.json changed without rerunning checkpoints/write_readmes.py leaves a model card
    (or the README's table) that quotes old figures."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("write_readmes",
                                                  CHECKPOINTS / "write_readmes.py")
    writer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(writer)
    cards = {name: writer.load_card(name) for name in SHIPPED}
    stale = [name for name, card in cards.items()
             if (CHECKPOINTS / name / "README.md").read_text()
             != writer.model_card(name, card, cards)]
    if writer.models_table(cards) not in writer.README.read_text():
        stale.append("README.md")
    assert not stale, f"rerun `python checkpoints/write_readmes.py`: stale {stale}"
