"""Every file of the bad-upload corpus (tests/bad_files.py) gets a plain sentence, never a crash.

Through `load_checkpoint_zip` (what the sidebar calls), the CLI (`evaluate FILE` and
`evaluate DIR` for the .keras entries: exit status 2, one line on stderr) and the real sidebar
uploader (AppTest). Nothing may be written outside the app's temporary folder.
"""

import tempfile
from pathlib import Path

import pytest

import vae_core
from bad_files import ZIP_SLIP_CANARY, checkpoint_files, good_zip, image_files, model_keras_of
from vae_core import cli, images as vae_images
from vae_core.checkpoints import CheckpointError, load_checkpoint_zip

CORPUS = checkpoint_files()
NAMES = sorted(CORPUS)
# What a message meant for a visitor must never contain.
FORBIDDEN = ("safe_mode", "Traceback", "/tmp", "/work", "keras.src", "File \"", "deserializ",
             "vae-lab-upload")


def assert_plain_sentence(message: str):
    assert message and len(message) < 400, message
    assert "\n" not in message.strip(), message
    for word in FORBIDDEN:
        assert word not in message, (word, message)


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """Point tempfile at an empty folder; after the test it must be empty again."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    yield scratch
    assert list(scratch.iterdir()) == []


def no_escape(root: Path):
    assert not (Path("/tmp") / ZIP_SLIP_CANARY).exists()
    assert not (Path("/") / ZIP_SLIP_CANARY).exists()
    assert not any(root.rglob(ZIP_SLIP_CANARY))


def test_the_corpus_is_complete_and_the_good_zip_loads():
    assert len(CORPUS) >= 28
    assert isinstance(load_checkpoint_zip(good_zip()), vae_core.VAE)


@pytest.mark.parametrize("name", NAMES)
def test_upload_is_refused_with_a_sentence(name, private_tmp):
    bad = CORPUS[name]
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint_zip(bad.data)
    assert_plain_sentence(str(caught.value))
    no_escape(private_tmp.parent)


def test_unsafe_models_are_refused_for_the_right_reason():
    for name, expected in [("keras_lambda", "different kind of Keras model"),
                           ("keras_other_model", "different kind of Keras model"),
                           ("keras_lambda_disguised", "could not be read safely"),
                           ("bomb_ratio", "zip bomb"), ("bomb_total", "unpacks to more than"),
                           ("keras_bomb", "zip bomb"), ("slip_dotdot", "outside its folder"),
                           ("slip_absolute", "outside its folder"),
                           ("slip_windows", "outside its folder"), ("flood", "holds 2000 files"),
                           ("locked", "password"), ("two_models", "more than one"),
                           ("empty", "empty"), ("notes", "not a zip")]:
        with pytest.raises(CheckpointError, match=expected):
            load_checkpoint_zip(CORPUS[name].data)


@pytest.mark.parametrize("name", NAMES)
def test_cli_refuses_every_bad_file_in_one_line(name, tmp_path, capsys):
    bad = CORPUS[name]
    file = tmp_path / bad.filename
    file.write_bytes(bad.data)
    assert cli.main(["evaluate", str(file)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    assert "safe_mode" not in err and "Traceback" not in err
    no_escape(tmp_path)

    model = model_keras_of(bad)
    if model is not None:  # the same model.keras in a checkpoint folder: `evaluate DIR`
        folder = tmp_path / "ck"
        folder.mkdir()
        (folder / "model.keras").write_bytes(model)
        (folder / "config.json").write_text(vae_core.VAEConfig(hidden=(8,),
                                                                latent_dim=2).to_json())
        assert cli.main(["evaluate", str(folder)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err and "safe_mode" not in err, err


def test_cli_paths_that_are_not_checkpoints(tmp_path, capsys):
    (tmp_path / "file.txt").write_text("hi")
    cases = [["evaluate", str(tmp_path / "missing")], ["evaluate", str(tmp_path)],
             ["quality", str(tmp_path / "file.txt")],
             ["train", "--resume", str(tmp_path / "missing")],
             ["train", "--resume", str(tmp_path)],
             ["train", "--epochs", "1", "--out", str(tmp_path / "file.txt")]]
    for argv in cases:
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err, (argv, err)


@pytest.mark.parametrize("name", sorted(image_files()))
def test_image_reader_answers_every_bad_image(name):
    """Each image, read as the digit page reads it, becomes a 28x28 digit or a plain sentence."""
    bad = image_files()[name]
    try:
        out = vae_images.prepare_digit(vae_images.open_image(bad.data))
    except ValueError as e:
        assert_plain_sentence(str(e))
    else:
        assert out.shape == (28, 28) and 0 <= out.min() and out.max() <= 1, name
