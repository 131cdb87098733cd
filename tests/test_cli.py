import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import vae_core
from vae_core.config import VAEConfig

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
    assert card["cpu"].endswith(" CPUs")  # a training time names the machine it was measured on
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


# ---- robustness: settings, per-epoch checkpoints, resume, signals, NaN -----------------------
import signal  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402

import vae_core  # noqa: E402
from vae_core import cli  # noqa: E402


@pytest.mark.parametrize("flags, expected", [
    (["--epochs", "0"], "epochs must be"), (["--latent-dim", "0"], "latent_dim must be"),
    (["--lr", "0"], "learning_rate must be"), (["--lr", "nan"], "learning_rate must be"),
    (["--lr", "-1"], "learning_rate must be"), (["--batch-size", "0"], "batch_size must be"),
    (["--batch-size", "100000"], "batch_size must be"), (["--hidden", "abc"], "hidden must be"),
    (["--max-train-images", "0"], "max-train-images"),
])
def test_out_of_range_settings_are_one_line_and_status_2(flags, expected, tmp_path, capsys):
    assert cli.main(["train", *flags, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and err.startswith("error: ") and "\n" not in err
    assert not (tmp_path / "x").exists()


def test_batch_larger_than_the_data_is_refused(tiny_cli_data, tmp_path, capsys):
    assert cli.main(["train", "--batch-size", "1024", "--out", str(tmp_path / "x")]) == 2
    assert "larger than the 512 training images" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


@pytest.fixture
def tiny_cli_data(tiny_data, monkeypatch):
    """The CLI trains on the small synthetic set instead of MNIST (in-process runs)."""
    monkeypatch.setattr("vae_core.data.load_dataset", lambda name: tiny_data)
    return tiny_data


TINY = ["train", "--hidden", "32", "--latent-dim", "2", "--batch-size", "64", "--lr", "3e-3",
        "--kl-warmup-epochs", "2", "--no-eval"]


class InterruptAfter(keras.callbacks.Callback):
    """Sends this process a real SIGINT at the end of a given epoch (1-based)."""

    def __init__(self, epoch, signum=signal.SIGINT):
        super().__init__()
        self.epoch, self.signum = epoch, signum

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epoch:
            signal.raise_signal(self.signum)


def with_extra_callback(monkeypatch, callback):
    real = vae_core.training.train

    def train(*args, callbacks=(), **kwargs):
        return real(*args, callbacks=[*callbacks, callback], **kwargs)

    monkeypatch.setattr("vae_core.training.train", train)


class InterruptTwiceAfter(InterruptAfter):
    """A first Ctrl-C, then a second one while the first is being handled."""

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epoch:
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)


def test_a_second_ctrl_c_stops_at_once_and_still_says_how_to_resume(
        tiny_cli_data, tmp_path, capsys, monkeypatch, request):
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))
    cut = tmp_path / "cut"
    with monkeypatch.context() as m:
        with_extra_callback(m, InterruptTwiceAfter(2))
        assert cli.main([*TINY, "--epochs", "3", "--out", str(cut)]) == 128 + signal.SIGINT
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Stopped by a second SIGINT" in err
    assert f"Resume with: python -m vae_core train --resume {cut}" in err
    assert "holds the 2 finished epoch(s) of 3" in err
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored
    assert cli.main(["train", "--resume", str(cut)]) == 0
    assert vae_core.load_checkpoint(cut).epochs_trained == 3


def test_interrupt_saves_the_finished_epochs_and_resume_matches_an_uninterrupted_run(
        tiny_cli_data, tmp_path, capsys, monkeypatch, request):
    # A suite started in the background (`pytest &`) inherits an ignored SIGINT, which the CLI
    # rightly keeps ignoring; this test needs Python's default handler to start from.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))
    full, cut = tmp_path / "full", tmp_path / "cut"
    assert cli.main([*TINY, "--epochs", "3", "--out", str(full)]) == 0
    capsys.readouterr()

    with monkeypatch.context() as m:
        with_extra_callback(m, InterruptAfter(2))
        assert cli.main([*TINY, "--epochs", "3", "--out", str(cut)]) == 128 + signal.SIGINT
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    assert f"Resume with: python -m vae_core train --resume {cut}" in out.err
    assert "holds the 2 finished epoch(s) of 3" in out.err
    assert "epoch 3/3 interrupted after 1 of 8 batches (not kept)" in out.out
    saved = vae_core.load_checkpoint(cut)
    assert saved.epochs_trained == 2 and (cut / "training_state.npz").is_file()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored

    assert cli.main(["train", "--resume", str(cut)]) == 0
    assert "Resuming" in capsys.readouterr().out
    a, b = vae_core.load_checkpoint(full), vae_core.load_checkpoint(cut)
    assert b.epochs_trained == 3 == a.epochs_trained
    assert not (cut / "training_state.npz").exists()  # finished: weights-only again
    assert b.history_log["loss"] == pytest.approx(a.history_log["loss"], rel=1e-4)
    for x, y in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)
    assert b.card["resumed_after_epoch"] == 2 and "in_progress" not in b.card
    # A finished run has nothing to resume: one line, status 2.
    assert cli.main(["train", "--resume", str(cut)]) == 2
    assert "holds no training state" in capsys.readouterr().err


def test_nan_loss_stops_keeps_the_last_good_epoch_and_never_saves_nan(
        tiny_cli_data, tmp_path, capsys, monkeypatch):
    from test_training import PoisonAt

    with_extra_callback(monkeypatch, PoisonAt(2))  # epoch 3 diverges
    out = tmp_path / "run"
    assert cli.main([*TINY, "--epochs", "4", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert "epoch 3" in err and "smaller learning rate" in err and "keeps epoch 2" in err
    model = vae_core.load_checkpoint(out)
    assert model.epochs_trained == 2
    assert all(np.isfinite(w).all() for w in model.get_weights())


@pytest.mark.slow
def test_real_signals_and_kills_never_lose_a_finished_epoch(mnist, tmp_path):
    """A real process: SIGTERM stops it cleanly; resumed, SIGKILL leaves the last epoch."""
    out = tmp_path / "run"
    args = [sys.executable, "-m", "vae_core", "train", "--hidden", "64", "--latent-dim", "2",
            "--epochs", "40", "--max-train-images", "2048", "--no-eval", "--out", str(out)]

    def run_until_epoch(cmd, n, signum):
        proc = subprocess.Popen(cmd, cwd=ROOT, env=os.environ, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            for line in proc.stdout:  # bounded: the run has 40 epochs
                if line.startswith(f"epoch {n}/"):
                    break
            proc.send_signal(signum)
            stdout, stderr = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
        return proc.returncode, stderr

    code, err = run_until_epoch(args, 2, signal.SIGTERM)
    assert code == 128 + signal.SIGTERM, err
    assert "Traceback" not in err and "Stopped by SIGTERM" in err
    assert f"python -m vae_core train --resume {out}" in err
    done = vae_core.load_checkpoint(out).epochs_trained
    assert done >= 2

    code, err = run_until_epoch([sys.executable, "-m", "vae_core", "train", "--resume",
                                 str(out)], done + 2, signal.SIGKILL)
    assert code == -signal.SIGKILL
    after = vae_core.load_checkpoint(out)  # whatever moment the kill hit
    assert after.epochs_trained >= done + 1
    assert vae_core.list_checkpoints(tmp_path) == [out]


def test_every_config_field_is_a_train_flag_with_its_help():
    import dataclasses

    from vae_core.config import VAEConfig

    train = cli.build_parser()._subparsers._group_actions[0].choices["train"]
    actions = {a.dest: a for a in train._actions}
    for field in dataclasses.fields(VAEConfig):
        assert actions[field.name].help.startswith(field.metadata["help"]), field.name


def test_a_preset_is_its_config_and_flags_override_it():
    from vae_core.config import PRESETS

    parse = lambda *flags: cli.config_from_args(cli.build_parser().parse_args(  # noqa: E731
        ["train", *flags]))
    assert parse("--preset", "mnist_2d_kl_off") == PRESETS["mnist_2d_kl_off"]
    assert parse("--preset", "mnist_2d_kl_off", "--beta", "0.5", "--hidden", "64,32",
                 "--conditional") == PRESETS["mnist_2d_kl_off"].replace(
        beta=0.5, hidden=(64, 32), conditional=True)
    assert parse("--lr", "0.01", "--no-conditional") == VAEConfig(learning_rate=0.01)


def test_an_unknown_preset_is_one_line_and_status_2(tmp_path, capsys):
    assert cli.main(["train", "--preset", "sharpest", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: Unknown preset 'sharpest'") and "\n" not in err
