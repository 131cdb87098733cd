"""The shipped checkpoints: they load safely, generate sensibly, and their cards hold up.

Reads only files in checkpoints/ (no dataset needed) except the Frechet-distance re-check, which
needs the test set (skipped when it is not cached).
"""

import json
import re
from pathlib import Path

import numpy as np
import pytest

import vae_core
from vae_core.quality import (AGREEMENT_BARS, CLASS_AGREEMENT_BAR, FD_RATIO_BARS,
                              conditional_agreement, fd_report, load_judge)

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


@pytest.mark.parametrize("name", SHIPPED)
def test_card_has_the_required_fields(name):
    c = card(name)
    assert c["command"].startswith("python -m vae_core train ")
    assert f"--out checkpoints/{name}" in c["command"]
    assert c["training_seconds"] > 0 and c["epochs_trained"] >= 1 and not c["stopped_early"]
    ev = c["evaluation"]
    assert ev["test_images"] == 10000 and ev["elbo"] < 0 and "nats" in ev["meaning"]
    assert ev["elbo"] == pytest.approx(-(ev["reconstruction"] + ev["kl"]), rel=1e-6)
    assert 0 <= ev["active_units"] <= ev["latent_dim"]
    q = c["quality"]
    assert q["judge"]["file"] == f"{c['dataset']}.keras"
    assert q["latent"]["encoded_mean_std"] > 0
    if c["conditional"]:
        assert ev["classifier_accuracy"] > 0.85
        assert len(q["conditional"]["per_class_agreement"]) == 10
        assert q["conditional"]["samples"] == 10_000 and q["fd"]["samples_scored"] == 10_000
    for file in ("model.keras", "config.json", "history.json", "samples.png", "README.md"):
        assert (CHECKPOINTS / name / file).is_file(), file


@pytest.mark.parametrize("name", CONDITIONAL)
def test_recorded_quality_meets_the_issue_10_agreement_bars(name):
    c = card(name)
    q = c["quality"]
    assert c["latent_dim"] >= 8  # a style latent roomy enough for a real handwriting style
    assert q["conditional"]["samples"] >= 1000  # at least 100 style seeds x 10 classes
    assert q["conditional"]["agreement"] >= AGREEMENT_BARS[c["dataset"]]
    assert min(q["conditional"]["per_class_agreement"]) >= CLASS_AGREEMENT_BAR


@pytest.mark.parametrize("name", CONDITIONAL)
def test_recorded_training_time_meets_the_issue_10_bar(name):
    assert card(name)["training_seconds"] <= 30 * 60  # <= 30 minutes on this 2-core CPU


@pytest.mark.parametrize("name", CONDITIONAL)
def test_recorded_quality_meets_the_issue_10_sharpness_bar(name):
    c = card(name)
    assert c["quality"]["fd"]["samples_ratio"] <= FD_RATIO_BARS[c["dataset"]]


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
    assert quick["sampler"] == recorded["sampler"] == model.default_sampler()
    # Reconstructions always use the whole test set: the same figure up to float round-off.
    assert quick["reconstructions"] == pytest.approx(recorded["reconstructions"], rel=0.02)
    # 2,000 samples estimate FD with an upward bias (and noise): close to the 10,000-sample
    # figure, and still within the bar once the floor is measured with as few real images.
    assert recorded["samples"] * 0.8 <= quick["samples"] <= recorded["samples"] * 1.6, quick


def test_kl_off_latent_is_visibly_wider_than_kl_on():
    on = card("mnist_2d_kl_on")["quality"]["latent"]["encoded_mean_std"]
    off = card("mnist_2d_kl_off")["quality"]["latent"]["encoded_mean_std"]
    assert 0.3 < on < 2  # near the prior's scale
    assert off > 3 * on
    for name in ("mnist_2d_kl_on", "mnist_2d_kl_off"):
        assert (CHECKPOINTS / name / "latent.png").is_file()


def test_pair_differs_only_in_beta():
    on = json.loads((CHECKPOINTS / "mnist_2d_kl_on" / "config.json").read_text())
    off = json.loads((CHECKPOINTS / "mnist_2d_kl_off" / "config.json").read_text())
    assert {k for k in on if on[k] != off[k]} == {"beta"}
    strip = lambda cmd: re.sub(r"--beta \S+|--out \S+", "", cmd)  # noqa: E731
    assert strip(card("mnist_2d_kl_on")["command"]) == strip(card("mnist_2d_kl_off")["command"])


def test_sizes_stay_small():
    sizes = {name: (CHECKPOINTS / name / "model.keras").stat().st_size / 2**20
             for name in SHIPPED}
    assert all(mb <= MAX_MB for mb in sizes.values()), sizes
    total = sum(f.stat().st_size for f in CHECKPOINTS.rglob("*") if f.is_file()) / 2**20
    assert total <= MAX_TOTAL_MB, total
    for judge in CHECKPOINTS.glob("judges/*.keras"):
        assert judge.stat().st_size <= 1.1 * 2**20, judge


@pytest.mark.parametrize("name,preset", [("mnist_conditional", "sharp_conditional_mnist"),
                                         ("fashion_conditional", "sharp_conditional_fashion")])
def test_the_train_page_recipe_is_the_shipped_one(models, name, preset):
    from vae_core.config import PRESETS

    config = models[name].config
    assert config.int8_dense  # shipped with int8 Dense weights (make_all.sh's last step)
    assert config.replace(int8_dense=False) == PRESETS[preset]


def test_the_committed_model_card_readmes_are_what_write_readmes_writes():
    """A card.json changed without rerunning checkpoints/write_readmes.py leaves a README that
    quotes old figures (it happened: the index kept naming a replaced momentum)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("write_readmes",
                                                  CHECKPOINTS / "write_readmes.py")
    writer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(writer)
    cards = {name: writer.load_card(name) for name in SHIPPED}
    stale = [name for name, card in cards.items()
             if (CHECKPOINTS / name / "README.md").read_text()
             != writer.model_card(name, card, cards)]
    if (CHECKPOINTS / "README.md").read_text() != writer.index(cards):
        stale.append("checkpoints/README.md")
    assert not stale, f"rerun `python checkpoints/write_readmes.py`: stale {stale}"
