"""vae_core.quality and the `quality`/`judge` CLI commands, on small synthetic data (fast)."""

import json

import numpy as np
import pytest

from vae_core import VAEConfig, cli, save_checkpoint
from vae_core.quality import (build_judge, conditional_agreement, judge_predict,
                              latent_scale, latent_scatter_png, quality_report, update_card)
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

    def generate_grid(self, seeds, digits):
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
    assert 0 <= q["conditional"]["agreement"] <= 1 and q["conditional"]["samples"] == 1000
    assert len(q["conditional"]["per_class_agreement"]) == 10
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
