"""The sidebar's 'Load a checkpoint' uploader, fed every file of the bad-upload corpus (AppTest).

Each bad file must give one `st.error` sentence (no exception box, no Keras internals, no
safe_mode advice, no server paths) and leave the model list as it was; a good zip still loads.
"""

import tempfile

import pytest

from apptest_support import assert_calm, checkpoints, open_app, tiny_checkpoints  # noqa: F401
from bad_files import checkpoint_files, good_zip
from test_bad_files import FORBIDDEN, no_escape
from ui import catalog
from ui.sidebar import UPLOAD


def upload(at, name: str, data: bytes):
    at.file_uploader(key=UPLOAD).set_value((name, data, "application/zip"))
    at.run()
    return at


# The few a visitor is most likely to meet (or an attacker to try); the slow test takes them all.
SAMPLE = ("empty", "notes", "cut", "keras_lambda", "keras_other_model", "slip_dotdot",
          "bomb_ratio")


def test_typical_bad_uploads_get_a_sentence(checkpoints, tmp_path, monkeypatch):
    check_uploads(SAMPLE, tmp_path, monkeypatch)


@pytest.mark.slow
def test_every_bad_upload_gets_a_sentence_and_changes_nothing(checkpoints, tmp_path,
                                                              monkeypatch):
    check_uploads(sorted(checkpoint_files()), tmp_path, monkeypatch)


def check_uploads(names, tmp_path, monkeypatch):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    at = open_app()
    before = list(at.selectbox(key=catalog.ACTIVE).options)
    problems = {}
    for name in names:
        bad = checkpoint_files()[name]
        upload(at, bad.filename, bad.data)
        assert_calm(at)
        errors = [e.value for e in at.error]
        assert len(errors) == 1, (name, errors)
        message = errors[0]
        assert message.startswith(f"Could not load {bad.filename}: "), (name, message)
        for word in FORBIDDEN:
            assert word not in message, (name, word, message)
        assert list(at.selectbox(key=catalog.ACTIVE).options) == before, name
        problems[name] = message
        assert list(scratch.iterdir()) == [], name  # temp files removed every time
    no_escape(tmp_path)
    assert len(problems) == len(names)

    upload(at, "mine.zip", good_zip())
    assert_calm(at)
    assert not at.error
    assert at.selectbox(key=catalog.ACTIVE).value.startswith("uploaded-")


@pytest.mark.parametrize("name, data", [("notes.txt", b"not a checkpoint"),
                                        ("model.keras", b"PK\x03\x04 cut short")])
def test_a_file_that_is_not_named_zip_gets_a_sentence_too(checkpoints, name, data):
    """The browser only offers .zip files, but a client can send any name; the content check
    answers it, not an exception from the uploader's type filter."""
    at = open_app()
    before = list(at.selectbox(key=catalog.ACTIVE).options)
    upload(at, name, data)
    assert_calm(at)
    assert [e.value[:len(f"Could not load {name}: ")] for e in at.error] == [
        f"Could not load {name}: "]
    assert list(at.selectbox(key=catalog.ACTIVE).options) == before
