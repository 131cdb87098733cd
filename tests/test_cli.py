import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import vae_core

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "vae_core", *args], cwd=ROOT, env=os.environ,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_train_then_evaluate_end_to_end(mnist, tmp_path):
    out = tmp_path / "ck"
    proc = run_cli("train", "--dataset", "mnist", "--arch", "mlp", "--latent-dim", "4",
                   "--hidden", "64", "--conditional", "--beta", "1", "--recon-loss", "bce",
                   "--epochs", "2", "--batch-size", "128", "--lr", "2e-3", "--seed", "0",
                   "--max-train-images", "2048", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "epoch 1/2" in proc.stdout and "epoch 2/2" in proc.stdout
    card = json.loads((out / "card.json").read_text())
    assert card["command"].startswith("python -m vae_core train --dataset mnist")
    assert card["epochs_trained"] == 2 and card["evaluation"]["test_images"] == 10000
    assert (out / "samples.png").stat().st_size > 1000
    assert json.loads((out / "config.json").read_text())["conditional"] is True
    snaps = vae_core.load_checkpoint(out).training_snapshots  # the CLI records history too
    assert list(snaps.epochs) == [1, 2] and snaps.points.shape == (2, 500, 2)

    proc = run_cli("evaluate", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["classifier_accuracy"] > 0.5  # 2048 images, 2 epochs: far above chance
    assert result["elbo"] < 0 and result["latent_dim"] == 4


def test_impossible_settings_fail_with_a_message_not_a_traceback(tmp_path):
    proc = run_cli("train", "--lr", "-1", "--out", str(tmp_path / "x"), timeout=120)
    assert proc.returncode == 2
    assert "learning_rate must be" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "x").exists()

    proc = run_cli("evaluate", str(tmp_path), timeout=120)
    assert proc.returncode == 2 and "not a checkpoint folder" in proc.stderr


def test_every_config_field_has_a_train_flag():
    import dataclasses

    from vae_core.cli import build_parser
    from vae_core.config import VAEConfig

    flags = {a.dest for a in build_parser()._subparsers._group_actions[0].choices["train"]._actions}
    renamed = {"learning_rate": "lr"}
    for field in dataclasses.fields(VAEConfig):
        assert renamed.get(field.name, field.name) in flags, field.name
