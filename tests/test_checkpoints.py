import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import vae_core
from vae_core.checkpoints import CheckpointError, load_checkpoint_zip, read_config_and_card
from vae_core.config import VAEConfig
from vae_core.models import VAE
from vae_core.training import train

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trained(tiny_data):
    config = VAEConfig(conditional=True, latent_dim=4, hidden=(32,), batch_size=64, epochs=1)
    return train(config, tiny_data, validate=False)


def test_round_trip_gives_identical_outputs(trained, tmp_path, tiny_data):
    path = vae_core.save_checkpoint(trained.model, tmp_path / "ck", trained.history,
                                    {"note": np.float32(1.5)})
    assert sorted(p.name for p in path.iterdir()) == [
        "card.json", "config.json", "history.json", "model.keras", "training_snapshots.npz"]
    loaded = vae_core.load_checkpoint(path)
    assert loaded.config == trained.model.config
    x = tiny_data.x_test[:20]
    for a, b in zip(trained.model.encode(x), loaded.encode(x)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(trained.model.classify(x), loaded.classify(x))
    np.testing.assert_array_equal(trained.model.generate(range(10), 5), loaded.generate(range(10), 5))
    assert loaded.history_log["loss"] == trained.history["loss"]
    assert loaded.epochs_trained == 1
    assert loaded.card["note"] == 1.5 and loaded.card["epochs_trained"] == 1
    assert loaded.card["dataset"] == "mnist" and "created" in loaded.card


def test_training_snapshots_round_trip_and_old_checkpoints_still_load(trained, tmp_path):
    snaps = trained.model.training_snapshots
    path = vae_core.save_checkpoint(trained.model, tmp_path / "ck", trained.history)
    loaded = vae_core.load_checkpoint(path).training_snapshots
    for name in ("epochs", "points", "labels", "samples", "explained"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(snaps, name))
    assert loaded.style_seed == snaps.style_seed
    zipped = load_checkpoint_zip(vae_core.checkpoint_zip(path))  # the zip keeps them too
    np.testing.assert_array_equal(zipped.training_snapshots.points, snaps.points)
    (path / "training_snapshots.npz").unlink()  # a checkpoint from before snapshots existed
    assert vae_core.load_checkpoint(path).training_snapshots is None


def test_unsafe_or_broken_snapshot_files_are_ignored(trained, tmp_path):
    path = vae_core.save_checkpoint(trained.model, tmp_path / "ck")
    import io
    buffer = io.BytesIO()  # an object array needs pickle: refused by allow_pickle=False
    np.savez(buffer, epochs=np.array([1]), points=np.array([object()]), labels=np.array([0]),
             samples=np.zeros((1, 10, 28, 28), np.uint8), explained=np.zeros((1, 2)),
             style_seed=np.int64(0))
    (path / "training_snapshots.npz").write_bytes(buffer.getvalue())
    assert vae_core.load_checkpoint(path).training_snapshots is None
    (path / "training_snapshots.npz").write_bytes(b"not an npz")
    assert vae_core.load_checkpoint(path).training_snapshots is None


def test_checkpoint_has_no_optimizer_state_and_is_small(trained, tmp_path):
    path = vae_core.save_checkpoint(trained.model, tmp_path / "ck")
    params = trained.model.count_params()
    assert (path / "model.keras").stat().st_size < params * 4 * 1.2 + 100_000


def test_overwrite_replaces_the_old_checkpoint(trained, tmp_path):
    path = tmp_path / "ck"
    vae_core.save_checkpoint(trained.model, path, card={"v": 1})
    vae_core.save_checkpoint(trained.model, path, card={"v": 2})
    assert vae_core.load_checkpoint(path).card["v"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["ck"]
    assert vae_core.list_checkpoints(tmp_path) == [path]


def test_failed_save_leaves_nothing_half_written(trained, tmp_path, monkeypatch):
    path = tmp_path / "ck"
    vae_core.save_checkpoint(trained.model, path, card={"v": 1})

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("vae_core.checkpoints.json.dumps", boom)
    with pytest.raises(KeyboardInterrupt):
        vae_core.save_checkpoint(trained.model, path, card={"v": 2})
    assert [p.name for p in tmp_path.iterdir()] == ["ck"]  # no temp folder left
    assert vae_core.load_checkpoint(path).card["v"] == 1  # old one intact


@pytest.mark.slow
def test_killed_process_never_leaves_a_partial_checkpoint(tmp_path):
    """SIGKILL a real process in the middle of writing: the destination never appears."""
    script = textwrap.dedent(f"""
        import sys, time, pathlib
        sys.path.insert(0, {str(ROOT)!r})
        import vae_core
        from vae_core.config import VAEConfig
        from vae_core.models import VAE
        real = pathlib.Path.write_text
        def slow(self, *a, **k):
            if self.name == "history.json":
                print("WRITING", flush=True); time.sleep(60)
            return real(self, *a, **k)
        pathlib.Path.write_text = slow
        vae_core.save_checkpoint(VAE(VAEConfig(hidden=(8,), latent_dim=2)), {str(tmp_path / 'ck')!r})
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "WRITING"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert not (tmp_path / "ck").exists()
    leftovers = [p.name for p in tmp_path.iterdir()]
    assert all(name.startswith(".ck.tmp-") for name in leftovers)  # hidden, never a checkpoint
    assert vae_core.list_checkpoints(tmp_path) == []  # listings skip hidden partial folders


def test_zip_round_trip_and_bad_uploads(trained, tmp_path):
    path = vae_core.save_checkpoint(trained.model, tmp_path / "ck")
    data = vae_core.checkpoint_zip(path)
    loaded = load_checkpoint_zip(data)
    np.testing.assert_array_equal(loaded.generate([1, 2], 0), trained.model.generate([1, 2], 0))
    with pytest.raises(CheckpointError, match="not a zip"):
        load_checkpoint_zip(b"hello")
    with pytest.raises(CheckpointError, match="holds no checkpoint"):
        load_checkpoint_zip(_zip({"notes.txt": b"hi"}))
    with pytest.raises(CheckpointError, match="cannot be loaded") as caught:
        load_checkpoint_zip(_zip({"model.keras": b"garbage", "config.json": b"{}"}))
    assert "/tmp" not in str(caught.value)  # no server paths in a message meant for a visitor
    with pytest.raises(CheckpointError, match="not a checkpoint"):
        vae_core.load_checkpoint(tmp_path)


def test_loading_refuses_unsafe_lambda_layers(tmp_path):
    import keras

    inp = keras.Input((2,))
    unsafe = keras.Model(inp, keras.layers.Lambda(lambda t: t * 2)(inp))
    (tmp_path / "ck").mkdir()
    unsafe.save(tmp_path / "ck" / "model.keras")
    (tmp_path / "ck" / "config.json").write_text(VAEConfig().to_json())
    with pytest.raises(CheckpointError):
        vae_core.load_checkpoint(tmp_path / "ck")


def _zip(files: dict) -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_int8_checkpoint_is_smaller_and_round_trips(tmp_path, tiny_data):
    config = VAEConfig(conditional=True, latent_dim=4, hidden=(256,), batch_size=64, epochs=1)
    model = train(config, tiny_data, validate=False).model
    small = model.with_int8_dense()
    assert small.config == config and small.int8_dense and not model.int8_dense
    full = vae_core.save_checkpoint(model, tmp_path / "f32", model.history_log)
    int8 = vae_core.save_checkpoint(small, tmp_path / "int8", model.history_log)
    size = lambda p: (p / "model.keras").stat().st_size  # noqa: E731
    assert size(int8) < 0.5 * size(full)  # the Dense kernels dominate: ~4x smaller
    loaded = vae_core.load_checkpoint(int8)
    assert loaded.int8_dense and loaded.config == config
    x = tiny_data.x_test[:50]
    np.testing.assert_array_equal(loaded.generate(range(10), 5), small.generate(range(10), 5))
    np.testing.assert_allclose(loaded.generate(range(10), 5), model.generate(range(10), 5),
                               atol=0.1)  # close to the float32 model, not equal
    assert (loaded.classify(x).argmax(1) == model.classify(x).argmax(1)).mean() >= 0.9


def test_a_checkpoint_trained_with_a_retired_option_says_where_it_still_loads(tmp_path):
    path = vae_core.save_checkpoint(VAE(VAEConfig(latent_dim=2, hidden=(8,))), tmp_path / "old")
    saved = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**saved, "critic_depth": 3}))
    with pytest.raises(vae_core.CheckpointError, match="critic_depth=3.*research-pass-15"):
        vae_core.load_checkpoint(path)


def test_config_and_card_are_read_without_the_model(tmp_path):
    config = VAEConfig(latent_dim=2, hidden=(8,))
    path = vae_core.save_checkpoint(VAE(config), tmp_path / "ckpt",
                                    card={"training_seconds": 123.0})
    (path / "model.keras").write_bytes(b"not a model")  # never opened
    read, card = read_config_and_card(path)
    assert read == config and card["training_seconds"] == 123.0
    (path / "config.json").write_text("{broken")
    with pytest.raises(vae_core.CheckpointError, match="config.json cannot be read"):
        read_config_and_card(path)
