"""A generated corpus of bad uploads: checkpoint zips, .keras files and images (no binary blobs).

Every entry is built at test time from a few lines of code, so what each file is stays readable
here. `checkpoint_files()` feeds the sidebar's checkpoint upload and the CLI; `image_files()` is
for the digit page's image upload (whose reader lives in `vae_core.images`).

    from bad_files import checkpoint_files, image_files
    for name, bad in checkpoint_files().items():
        bad.filename, bad.data, bad.why
"""

from __future__ import annotations

import functools
import io
import json
import struct
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ZIP_SLIP_CANARY = "vae-lab-zip-slip-canary.txt"  # must never appear outside the temp folder


@dataclass(frozen=True)
class BadFile:
    filename: str  # the name a visitor's browser would send
    data: bytes
    why: str  # what is wrong with it, for test ids and failure messages
    kind: str = "zip"  # zip: a whole upload; keras: a model.keras inside a proper checkpoint zip


def make_zip(files: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _random(n: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def _keras_bytes(model) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "model.keras"
        model.save(file)
        return file.read_bytes()


@functools.lru_cache(maxsize=1)
def good_checkpoint() -> dict[str, bytes]:
    """The files of a real (untrained, tiny) checkpoint, as the Train page would zip them."""
    import vae_core
    from vae_core.models import VAE

    with tempfile.TemporaryDirectory() as tmp:
        path = vae_core.save_checkpoint(VAE(vae_core.VAEConfig(hidden=(8,), latent_dim=2)),
                                        Path(tmp) / "ck")
        return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


def good_zip() -> bytes:
    return make_zip({f"vae_lab_model/{k}": v for k, v in good_checkpoint().items()})


def _with_model(model_keras: bytes) -> bytes:
    files = dict(good_checkpoint())
    files["model.keras"] = model_keras
    return make_zip({f"vae_lab_model/{k}": v for k, v in files.items()})


def _lying_sizes(data: bytes, size: int) -> bytes:
    """A zip whose central directory claims every entry unpacks to `size` bytes."""
    out = bytearray(data)
    start = 0
    while (i := out.find(b"PK\x01\x02", start)) != -1:
        struct.pack_into("<I", out, i + 24, size)
        start = i + 4
    return bytes(out)


def _encrypted_flag(data: bytes) -> bytes:
    """Set the 'encrypted' flag bit of every entry (local and central headers)."""
    out = bytearray(data)
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = 0
        while (i := out.find(signature, start)) != -1:
            flags = struct.unpack_from("<H", out, i + offset)[0]
            struct.pack_into("<H", out, i + offset, flags | 1)
            start = i + 4
    return bytes(out)


def _symlink_zip() -> bytes:
    files = dict(good_checkpoint())
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            if name == "model.keras":
                info = zipfile.ZipInfo(f"vae_lab_model/{name}")
                info.external_attr = (0o120777 << 16)  # a symlink to the server's password file
                archive.writestr(info, "/etc/passwd")
            else:
                archive.writestr(f"vae_lab_model/{name}", data)
    return buffer.getvalue()


def _lambda_model_keras() -> bytes:
    import keras

    inp = keras.Input((2,))
    return _keras_bytes(keras.Model(inp, keras.layers.Lambda(lambda t: t * 2)(inp)))


def _lambda_claiming_to_be_vae() -> bytes:
    """A .keras whose config says 'VAE' at the top but hides a Lambda layer in a nested model."""
    import keras

    inp = keras.Input((2,))
    lam = keras.Model(inp, keras.layers.Lambda(lambda t: t * 2)(inp))
    raw = _keras_bytes(lam)
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        files = {n: archive.read(n) for n in archive.namelist()}
    config = json.loads(files["config.json"])
    files["config.json"] = json.dumps({
        "module": "vae_core.models", "class_name": "VAE", "registered_name": "vae_core>VAE",
        "config": {"config": {"hidden": [8], "latent_dim": 2}, "name": "vae", "inner": config},
        "compile_config": {}}).encode()
    return make_zip(files, zipfile.ZIP_STORED)


def _plain_keras_model() -> bytes:
    import keras

    return _keras_bytes(keras.Sequential([keras.Input((784,)), keras.layers.Dense(10)]))


def _keras_with_garbage_weights() -> bytes:
    with zipfile.ZipFile(io.BytesIO(good_checkpoint()["model.keras"])) as archive:
        files = {n: archive.read(n) for n in archive.namelist()}
    files["model.weights.h5"] = _random(5000, 3)
    return make_zip(files, zipfile.ZIP_STORED)


def _nested_keras_bomb() -> bytes:
    with zipfile.ZipFile(io.BytesIO(good_checkpoint()["model.keras"])) as archive:
        files = {n: archive.read(n) for n in archive.namelist()}
    files["model.weights.h5"] = bytes(60 * 2**20)  # 60 MB of zeros, about 60 kB compressed
    return make_zip(files)


@functools.lru_cache(maxsize=1)
def checkpoint_files() -> dict[str, BadFile]:
    """Bad checkpoint uploads, by short name. None of them may load; all get a plain sentence."""
    good = good_checkpoint()
    valid = good_zip()
    files = [
        BadFile("notes.zip", b"These are my notes, not a zip.\n", "text renamed .zip"),
        BadFile("empty.zip", b"", "empty file"),
        BadFile("noise.zip", _random(4096), "random bytes"),
        BadFile("cut.zip", valid[: len(valid) // 2], "truncated zip (first half)"),
        BadFile("cut_end.zip", valid[:-30], "truncated zip (central directory cut)"),
        BadFile("report.zip", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n",
                "a PDF renamed .zip"),
        BadFile("png.zip", b"\x89PNG\r\n\x1a\n" + _random(200, 1), "a PNG renamed .zip"),
        BadFile("nothing.zip", make_zip({"notes.txt": b"hello"}), "zip without a checkpoint"),
        BadFile("config_only.zip", make_zip({"config.json": good["config.json"]}),
                "zip with config.json but no model"),
        BadFile("slip_dotdot.zip",
                make_zip({f"../../{ZIP_SLIP_CANARY}": b"escaped",
                          **{f"../{k}": v for k, v in good.items()}}),
                "zip slip: entries with ..", ),
        BadFile("slip_absolute.zip",
                make_zip({f"/tmp/{ZIP_SLIP_CANARY}": b"escaped",
                          **{f"/tmp/ck/{k}": v for k, v in good.items()}}),
                "zip slip: absolute paths"),
        BadFile("slip_windows.zip",
                make_zip({f"C:\\temp\\{ZIP_SLIP_CANARY}": b"escaped",
                          **{f"..\\{k}": v for k, v in good.items()}}),
                "zip slip: Windows drive and ..\\ paths"),
        BadFile("bomb_ratio.zip", make_zip({"vae_lab_model/model.keras": bytes(80 * 2**20),
                                            "vae_lab_model/config.json": good["config.json"]}),
                "zip bomb: 80 MB of zeros in ~80 kB"),
        BadFile("bomb_total.zip", _lying_sizes(valid, 1_500_000_000),
                "zip bomb: headers claim 1.5 GB per entry"),
        BadFile("flood.zip", make_zip({f"f{i:04d}.txt": b"x" for i in range(2000)}),
                "2000 entries"),
        BadFile("locked.zip", _encrypted_flag(valid), "password-protected entries"),
        BadFile("two_models.zip",
                make_zip({**{f"a/{k}": v for k, v in good.items()},
                          **{f"b/{k}": v for k, v in good.items()}}),
                "two checkpoints in one zip"),
        BadFile("symlink.zip", _symlink_zip(), "model.keras is a symlink to /etc/passwd"),
        BadFile("bad_config.zip",
                make_zip({**{f"ck/{k}": v for k, v in good.items()},
                          "ck/config.json": b"{not json"}),
                "config.json is not JSON"),
        BadFile("alien_config.zip",
                make_zip({**{f"ck/{k}": v for k, v in good.items()},
                          "ck/config.json": b'{"latent_dim": 0, "hidden": [8]}'}),
                "config.json with an impossible setting"),
        # model.keras files: each one inside an otherwise proper checkpoint zip
        BadFile("keras_empty.zip", _with_model(b""), "model.keras is empty", "keras"),
        BadFile("keras_noise.zip", _with_model(_random(20000, 2)), "model.keras is random bytes",
                "keras"),
        BadFile("keras_cut.zip", _with_model(good["model.keras"][:3000]),
                "model.keras is truncated", "keras"),
        BadFile("keras_other_model.zip", _with_model(_plain_keras_model()),
                "model.keras is some other Keras model", "keras"),
        BadFile("keras_lambda.zip", _with_model(_lambda_model_keras()),
                "model.keras holds a Lambda layer (code)", "keras"),
        BadFile("keras_lambda_disguised.zip", _with_model(_lambda_claiming_to_be_vae()),
                "model.keras claims to be a VAE but hides a Lambda model", "keras"),
        BadFile("keras_bad_weights.zip", _with_model(_keras_with_garbage_weights()),
                "model.keras with garbage weights", "keras"),
        BadFile("keras_bomb.zip", _with_model(_nested_keras_bomb()),
                "model.keras is itself a zip bomb", "keras"),
        BadFile("keras_slip.zip",
                _with_model(make_zip({f"../../{ZIP_SLIP_CANARY}": b"x", "config.json": b"{}"})),
                "model.keras with a zip-slip entry", "keras"),
    ]
    return {Path(f.filename).stem: f for f in files}


def model_keras_of(bad: BadFile) -> bytes | None:
    """The model.keras inside a 'keras' corpus entry (to test checkpoint folders too)."""
    if bad.kind != "keras":
        return None
    with zipfile.ZipFile(io.BytesIO(bad.data)) as archive:
        return archive.read("vae_lab_model/model.keras")


# ---- images ---------------------------------------------------------------------------------
def _png(width: int, height: int, rows: bytes | None = None) -> bytes:
    """A greyscale PNG; huge sizes are streamed so a 12000x12000 file costs ~150 kB, not 144 MB."""
    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    compressor = zlib.compressobj(9)
    row = b"\x00" + bytes(width)
    parts = [compressor.compress(row) for _ in range(height)] if rows is None else [
        compressor.compress(rows)]
    idat = b"".join(parts) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat)
            + chunk(b"IEND", b""))


def _pil_bytes(image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


@functools.lru_cache(maxsize=1)
def image_files() -> dict[str, BadFile]:
    """Bad or awkward image uploads for a digit reader; all must get a sentence, none a crash."""
    from PIL import Image

    digit = Image.new("L", (28, 28), 0)
    digit.paste(255, (10, 4, 18, 24))
    good_png = _pil_bytes(digit, "PNG")
    frames = [Image.new("P", (28, 28), i) for i in (0, 255)]
    files = [
        BadFile("tiny.png", _png(1, 1), "1x1 pixel PNG", "image"),
        BadFile("huge.png", _png(12000, 12000), "12000x12000 PNG (decompression bomb)", "image"),
        BadFile("cmyk.jpg", _pil_bytes(Image.new("CMYK", (40, 40), (0, 0, 0, 255)), "JPEG"),
                "CMYK JPEG", "image"),
        BadFile("animated.gif",
                _pil_bytes(frames[0], "GIF", save_all=True, append_images=frames[1:],
                           duration=100, loop=0),
                "animated GIF (2 frames)", "image"),
        BadFile("drawing.svg",
                b'<svg xmlns="http://www.w3.org/2000/svg" width="28" height="28">'
                b'<rect x="10" y="4" width="8" height="20" fill="black"/></svg>',
                "SVG (vector, script-capable)", "image"),
        BadFile("cut.png", good_png[: len(good_png) // 2], "truncated PNG", "image"),
        BadFile("notes.png", b"just some text, honestly\n", "text renamed .png", "image"),
        BadFile("empty.png", b"", "empty file", "image"),
        BadFile("noise.png", _random(3000, 4), "random bytes named .png", "image"),
    ]
    return {Path(f.filename).stem + "_" + Path(f.filename).suffix[1:]: f for f in files}
