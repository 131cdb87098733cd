"""vae_core.quality and the `quality`/`judge` CLI commands, on small synthetic data (fast)."""

import json

import numpy as np
import pytest

from vae_core import VAEConfig, cli, save_checkpoint, samplers
from vae_core.quality import (build_judge, conditional_agreement, fd_report, feature_stats,
                              frechet_distance, judge_features, judge_predict, latent_scale,
                              latent_scatter_png, quality_report, style_novelty, update_card)
from vae_core.training import build_model


class OracleJudge:
    """Answers the class chosen by a rule, so agreement figures are known exactly."""

    def __init__(self, answer):
        self.answer = answer

    def predict(self, x, batch_size=None, verbose=0):
        classes = self.answer(len(x))
        probs = np.full((len(x), 10), 0.02, np.float32)
        probs[np.arange(len(x)), classes] = 0.82
        return probs


class FakeModel:
    """generate_grid returns (S, 10, 28, 28); the judge never looks at the pixels."""

    def generate_grid(self, seeds, digits, sampler=None):
        return np.zeros((len(list(seeds)), len(list(digits)), 28, 28), np.float32)


def test_agreement_counts_requested_class():
    perfect = conditional_agreement(FakeModel(), OracleJudge(lambda n: np.arange(n) % 10),
                                    seeds=range(5))
    assert perfect["agreement"] == 1.0 and perfect["samples"] == 50
    assert perfect["mean_confidence"] == pytest.approx(0.82)
    assert perfect["mean_prob_requested"] == pytest.approx(0.82)

    # The judge always says 3: only the requested 3s agree.
    always3 = conditional_agreement(FakeModel(), OracleJudge(lambda n: np.full(n, 3)),
                                    seeds=range(5))
    assert always3["agreement"] == pytest.approx(0.1)
    assert always3["per_class_agreement"] == [0, 0, 0, 1, 0, 0, 0, 0, 0, 0]
    assert always3["mean_prob_requested"] == pytest.approx(0.1 * 0.82 + 0.9 * 0.02)


def test_judge_shape_and_size():
    judge = build_judge()
    assert judge.count_params() * 4 < 1_000_000  # ships as a < 1 MB file
    probs = judge_predict(judge, np.zeros((3, 28, 28), np.float32))
    assert probs.shape == (3, 10)
    np.testing.assert_allclose(probs.sum(1), 1, rtol=1e-5)


def test_latent_scale_and_scatter(tiny_data):
    model = build_model(VAEConfig(latent_dim=2, hidden=(16,), epochs=1))
    scale = latent_scale(model, tiny_data)
    assert len(scale["encoded_mean_std_per_dim"]) == 2 and scale["encoded_mean_std"] >= 0
    png = latent_scatter_png(np.array([[0.0, 0.0], [40.0, -3.0]]), [1, 7])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_quality_cli_adds_section_to_card(tmp_path, monkeypatch, tiny_data):
    config = VAEConfig(latent_dim=2, hidden=(16,), conditional=True, epochs=1)
    ckpt = save_checkpoint(build_model(config), tmp_path / "ck", card={"command": "x"})
    judge_file = tmp_path / "judge.keras"
    build_judge().save(judge_file)
    monkeypatch.setattr("vae_core.quality.load_dataset", lambda name: tiny_data)

    assert cli.main(["quality", str(ckpt), "--judge", str(judge_file)]) == 0
    card = json.loads((ckpt / "card.json").read_text())
    assert card["command"] == "x"  # the rest of the card survives
    q = card["quality"]
    assert 0 <= q["conditional"]["agreement"] <= 1 and q["conditional"]["samples"] == 10_000
    assert len(q["conditional"]["per_class_agreement"]) == 10
    fd = q["fd"]
    assert fd["samples_scored"] == 10_000 and fd["sampler"] == "normal"
    assert fd["floor"] > 0 and fd["samples"] >= 0 and fd["reconstructions"] >= 0
    assert fd["samples_ratio"] == pytest.approx(fd["samples"] / fd["floor"])
    assert (ckpt / "latent.png").is_file()
    assert not list(ckpt.glob(".card.*"))  # no temp file left behind


def test_quality_unconditional_reports_prior_census(tiny_data):
    model = build_model(VAEConfig(latent_dim=3, hidden=(16,), epochs=1))
    report = quality_report(model, judge=build_judge(), dataset=tiny_data)
    assert "conditional" not in report
    assert sum(report["prior_samples"]["class_fractions"]) == pytest.approx(1.0, abs=1e-3)


def test_update_card_is_a_whole_file_replace(tmp_path):
    (tmp_path / "card.json").write_text(json.dumps({"a": 1}))
    update_card(tmp_path, "quality", {"b": 2})
    assert json.loads((tmp_path / "card.json").read_text()) == {"a": 1, "quality": {"b": 2}}


def test_missing_judge_is_a_clear_error(tmp_path, capsys):
    ckpt = save_checkpoint(build_model(VAEConfig(latent_dim=2, hidden=(8,), epochs=1)),
                           tmp_path / "ck")
    assert cli.main(["quality", str(ckpt), "--judge", str(tmp_path / "nope.keras")]) == 2
    assert "python -m vae_core judge" in capsys.readouterr().err


def test_frechet_distance_of_identical_sets_is_zero():
    x = np.random.default_rng(0).normal(size=(2000, 8))
    assert frechet_distance(feature_stats(x), feature_stats(x)) == pytest.approx(0, abs=1e-8)


def test_frechet_distance_of_shifted_and_scaled_gaussians_has_the_closed_form():
    # N(0, I) vs N(m, s^2 I) in d dims: |m|^2 + d (1 - s)^2.
    d, m, s = 6, np.full(6, 0.5), 2.0
    exact = frechet_distance((np.zeros(d), np.eye(d)), (m, s ** 2 * np.eye(d)))
    assert exact == pytest.approx(6 * 0.25 + d * (1 - s) ** 2)
    # Non-commuting covariances: compare with the eigen-decomposition of C1 C2 directly.
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    c1, c2 = a @ a.T + np.eye(d), b @ b.T + np.eye(d)
    cross = np.sqrt(np.linalg.eigvals(c1 @ c2).real.clip(0)).sum()
    expected = np.trace(c1) + np.trace(c2) - 2 * cross
    assert frechet_distance((np.zeros(d), c1), (np.zeros(d), c2)) == pytest.approx(expected)
    # From samples: close to the closed form.
    x = rng.normal(size=(20000, d))
    y = m + s * rng.normal(size=(20000, d))
    assert frechet_distance(feature_stats(x), feature_stats(y)) == pytest.approx(7.5, rel=0.05)


def test_judge_features_are_the_penultimate_dense_64(tiny_data):
    judge = build_judge()
    features = judge_features(judge, tiny_data.x_test[:7])
    assert features.shape == (7, 64) and features.min() >= 0  # ReLU outputs
    last = judge.layers[-1]
    probs = np.asarray(last(features.astype(np.float32)))
    np.testing.assert_allclose(probs, judge_predict(judge, tiny_data.x_test[:7]), atol=1e-5)


def test_fd_report_floor_samples_and_reconstructions(tiny_data):
    model = build_model(VAEConfig(latent_dim=3, hidden=(16,), epochs=1))
    judge = build_judge()
    report = fd_report(model, judge, tiny_data, n=100)
    assert report["samples_scored"] == 100
    assert report["floor"] < report["samples"]  # an untrained model is no match for real data
    assert report["reconstructions_ratio"] == pytest.approx(
        report["reconstructions"] / report["floor"])
    real = fd_report(model, judge, tiny_data, n=100, samples=tiny_data.x_train[:100])
    assert real["samples"] == pytest.approx(real["floor"], rel=0.5)


def test_style_novelty_grows_with_the_kernel_and_is_absent_without_class_styles(tiny_data):
    config = VAEConfig(latent_dim=3, hidden=(16,), conditional=True, class_matched_styles=True,
                       class_style_anchors=40, class_style_bandwidth=0.01)
    model = build_model(config)
    assert style_novelty(model, tiny_data) is None  # not fitted yet: no class-matched sampler
    samplers.fit(model, tiny_data.x_train)
    tight = style_novelty(model, tiny_data, seeds=range(30))
    model.config = config.replace(class_style_bandwidth=1.0)
    wide = style_novelty(model, tiny_data, seeds=range(30))
    # A 1%-wide kernel nearly copies kept training styles; held-out styles sit much farther.
    assert tight["samples_median"] < 0.2 * tight["test_median"]
    assert wide["samples_median"] > 4 * tight["samples_median"]
    assert tight["test_median"] == wide["test_median"] > 0
    assert tight["ratio"] == pytest.approx(tight["samples_median"] / tight["test_median"])
    assert tight["style_seeds"] == 30
    assert style_novelty(build_model(VAEConfig(latent_dim=3, hidden=(16,), conditional=True)),
                         tiny_data) is None
