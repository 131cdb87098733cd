"""A VAE's decoder as one bytes payload that a browser runs: layer descriptions plus weights.

Layout (little-endian): b"VAEW", uint32 version, uint32 header length, the header (UTF-8 JSON,
space-padded to a multiple of 4 bytes), then the tensors, each 4-byte aligned. The header lists
the layers in order, the tensors (name -> offset, dtype, shape) and, when given, the latent map
(test points, labels and the plane's projection). Its "hash" is a digest of everything else, so
the browser can key the parsed model by it.

Layer kinds: dense, reshape, conv2d, conv2d_transpose, activation. Convolution kernels are stored
(kh, kw, in, out), the order a forward pass reads contiguously. An int8 Dense layer (Keras
`quantize("int8")`) keeps its int8 kernel and per-unit scale, and its spec carries
"input_quantizer" because Keras also rounds each input row to int8 (abs-max scale) before the
matmul: `reference_decode` and the browser repeat that step exactly.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass

import numpy as np

MAGIC = b"VAEW"
VERSION = 1
NUM_CLASSES = 10
ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh")
_DTYPES = {"f32": np.float32, "i8": np.int8, "u8": np.uint8}


class WebDecoderError(ValueError):
    """A model (or payload) that the browser decoder cannot run; the message says why."""


@dataclass(frozen=True)
class WebDecoder:
    """A parsed payload: its header, its layer specs in order and its tensors by name."""

    header: dict
    tensors: dict[str, np.ndarray]

    @property
    def hash(self) -> str:
        return self.header["hash"]

    @property
    def layers(self) -> list[dict]:
        return self.header["layers"]

    def tensor(self, name):
        return None if name is None else self.tensors[name]


# ---- Export ---------------------------------------------------------------------------------
class _Blob:
    """Tensors appended one after another, 4-byte aligned, with their table of contents."""

    def __init__(self):
        self.parts, self.table, self.size = [], {}, 0

    def add(self, name: str, array, dtype: str = "f32") -> str:
        data = np.ascontiguousarray(array, dtype=_DTYPES[dtype])
        self.table[name] = {"offset": self.size, "dtype": dtype, "shape": list(data.shape)}
        raw = data.tobytes()
        raw += b"\0" * (-len(raw) % 4)
        self.parts.append(raw)
        self.size += len(raw)
        return name


def _activation(layer) -> str:
    name = layer.get_config().get("activation") or "linear"
    if name not in ACTIVATIONS:
        raise WebDecoderError(f"Layer {layer.name!r} uses activation {name!r}; the browser "
                              f"decoder knows only {', '.join(ACTIVATIONS)}.")
    return name


def _conv_common(layer, shape, kind: str) -> dict:
    config = layer.get_config()
    if len(shape) != 3:
        raise WebDecoderError(f"Layer {layer.name!r} needs an (H, W, C) input, got {shape}.")
    if config.get("data_format", "channels_last") != "channels_last":
        raise WebDecoderError(f"Layer {layer.name!r} is channels_first; only channels_last "
                              "runs in the browser.")
    if tuple(config.get("dilation_rate", (1, 1))) != (1, 1) or config.get("groups", 1) != 1:
        raise WebDecoderError(f"Layer {layer.name!r} uses dilation or groups, which the browser "
                              "decoder does not support.")
    if config.get("output_padding") is not None:
        raise WebDecoderError(f"Layer {layer.name!r} sets output_padding, which the browser "
                              "decoder does not support.")
    if getattr(layer, "quantization_mode", None) is not None:
        raise WebDecoderError(f"Layer {layer.name!r} is quantized; the browser decoder runs "
                              "convolutions in float32 only.")
    if config["padding"] not in ("same", "valid"):
        raise WebDecoderError(f"Layer {layer.name!r} uses padding {config['padding']!r}.")
    return {"type": kind, "activation": _activation(layer),
            "kernel_size": list(config["kernel_size"]), "strides": list(config["strides"]),
            "padding": config["padding"], "filters": int(config["filters"])}


def conv_geometry(kind, size, kernel, stride, padding) -> tuple[int, int]:
    """(output size, leading pad) of one spatial axis, as TensorFlow computes them.

    conv2d: y[o] = sum_k x[o*stride + k - pad]; conv2d_transpose: y[i*stride + k - pad] += x[i].
    """
    if kind == "conv2d":
        out = -(-size // stride) if padding == "same" else (size - kernel) // stride + 1
        total = max((out - 1) * stride + kernel - size, 0) if padding == "same" else 0
    else:
        out = size * stride if padding == "same" else (size - 1) * stride + max(kernel, stride)
        total = max(kernel - stride, 0) if padding == "same" else 0
    return out, total // 2


def _layer_spec(layer, shape, blob: _Blob, index: int):
    """The spec of one Keras layer and its output shape; WebDecoderError when unsupported."""
    kind = type(layer).__name__
    prefix = f"{index}/"
    if kind == "InputLayer":
        return None, shape
    if kind == "Dense":
        if len(shape) != 1:
            raise WebDecoderError(f"Dense layer {layer.name!r} gets a {len(shape)}-D input; the "
                                  "browser decoder runs Dense only on flat vectors.")
        mode = getattr(layer, "quantization_mode", None)
        units = int(layer.units)
        spec = {"type": "dense", "activation": _activation(layer), "units": units,
                "bias": blob.add(prefix + "bias", layer.bias.numpy()) if layer.use_bias else None}
        if getattr(layer, "lora_enabled", False):
            raise WebDecoderError(f"Dense layer {layer.name!r} has LoRA weights, which the "
                                  "browser decoder does not support.")
        if mode is None:
            spec["kernel"] = blob.add(prefix + "kernel", layer.kernel.numpy())
        elif mode == "int8":
            spec["kernel"] = blob.add(prefix + "kernel", layer._kernel.numpy(), "i8")
            spec["kernel_scale"] = blob.add(prefix + "kernel_scale", layer.kernel_scale.numpy())
            spec["input_quantizer"] = _input_quantizer(layer)
        else:
            raise WebDecoderError(f"Dense layer {layer.name!r} is quantized as {mode!r}; the "
                                  "browser decoder supports float32 and int8 only.")
        return spec, (units,)
    if kind == "Reshape":
        target = tuple(int(d) for d in layer.get_config()["target_shape"])
        if -1 in target or np.prod(target) != np.prod(shape):
            raise WebDecoderError(f"Reshape {layer.name!r} from {shape} to {target} is not "
                                  "supported in the browser.")
        return {"type": "reshape", "shape": list(target)}, target
    if kind == "Flatten":
        return {"type": "reshape", "shape": [int(np.prod(shape))]}, (int(np.prod(shape)),)
    if kind == "Activation":
        return {"type": "activation", "activation": _activation(layer)}, shape
    if kind in ("Conv2D", "Conv2DTranspose"):
        spec = _conv_common(layer, shape, "conv2d" if kind == "Conv2D" else "conv2d_transpose")
        kernel = layer.kernel.numpy()
        if kind == "Conv2DTranspose":
            kernel = kernel.transpose(0, 1, 3, 2)  # Keras (kh, kw, out, in) -> (kh, kw, in, out)
        if kernel.shape[2] != shape[2]:
            raise WebDecoderError(f"Layer {layer.name!r} expects {kernel.shape[2]} channels, "
                                  f"gets {shape[2]}.")
        spec["kernel"] = blob.add(prefix + "kernel", kernel)
        spec["bias"] = blob.add(prefix + "bias", layer.bias.numpy()) if layer.use_bias else None
        (kh, kw), (sy, sx) = spec["kernel_size"], spec["strides"]
        h, _ = conv_geometry(spec["type"], shape[0], kh, sy, spec["padding"])
        w, _ = conv_geometry(spec["type"], shape[1], kw, sx, spec["padding"])
        return spec, (h, w, spec["filters"])
    raise WebDecoderError(f"Layer {layer.name!r} ({kind}) cannot run in the browser decoder.")


def _input_quantizer(layer) -> dict | None:
    quantizer = getattr(layer, "inputs_quantizer", None)
    if quantizer is None:
        return None
    if type(quantizer).__name__ != "AbsMaxQuantizer" or quantizer.axis not in (None, (-1,)):
        raise WebDecoderError(f"Dense layer {layer.name!r} quantizes its inputs with "
                              f"{type(quantizer).__name__}; only per-row abs-max is supported.")
    low, high = quantizer.value_range
    return {"low": float(low), "high": float(high), "epsilon": float(quantizer.epsilon)}


def _chain(decoder) -> list:
    """The decoder's layers, checked to form one straight chain from input to output."""
    layers = list(decoder.layers)
    try:
        straight = (len(decoder.inputs) == 1 and len(decoder.outputs) == 1
                    and all(b.input is a.output for a, b in zip(layers, layers[1:]))
                    and decoder.outputs[0] is layers[-1].output)
    except (AttributeError, ValueError):
        straight = False
    if not straight:
        raise WebDecoderError("The decoder is not a single chain of layers, so it cannot run in "
                              "the browser.")
    return layers


def decoder_payload(model, points=None, labels=None, projection=None) -> bytes:
    """The bytes a browser needs to decode like `model.decode`, plus the latent map if given.

    `model` is a VAE (its `.decoder` and `.config` are read); `points` (n, 2) and `labels` (n,)
    are the map's encoded test images; `projection` (centre (D,), components (2, D)) maps a
    plane point back to the style latent and may be omitted for 2-D latents.
    """
    decoder = getattr(model, "decoder", None)
    config = getattr(model, "config", None)
    if decoder is None or config is None:
        raise WebDecoderError("Only a vae_core VAE (with .decoder and .config) can be exported.")
    conditional = bool(config.conditional)
    latent_dim = int(config.latent_dim)
    blob, specs = _Blob(), []
    shape = (int(decoder.inputs[0].shape[-1]),)
    if shape[0] != latent_dim + NUM_CLASSES * conditional:
        raise WebDecoderError(f"The decoder reads {shape[0]} inputs, not the config's "
                              f"{latent_dim} style dims{' + 10 class slots' * conditional}.")
    for index, layer in enumerate(_chain(decoder)):
        spec, shape = _layer_spec(layer, shape, blob, index)
        if spec is not None:
            specs.append(spec)
    if int(np.prod(shape)) != 28 * 28:
        raise WebDecoderError(f"The decoder outputs shape {shape}, not one 28 x 28 image.")
    header = {"version": VERSION, "input_dim": latent_dim + NUM_CLASSES * conditional,
              "latent_dim": latent_dim, "conditional": conditional, "classes": NUM_CLASSES,
              "output_shape": [28, 28], "layers": specs}
    if points is not None:
        header["map"] = _map_section(blob, points, labels, projection, latent_dim)
    header["tensors"] = blob.table
    return _pack(header, b"".join(blob.parts))


def _map_section(blob: _Blob, points, labels, projection, latent_dim: int) -> dict:
    points = np.asarray(points, np.float32).reshape(-1, 2)
    labels = np.zeros(len(points)) if labels is None else np.asarray(labels)
    if len(labels) != len(points):
        raise WebDecoderError(f"{len(points)} map points but {len(labels)} labels.")
    if projection is None:
        if latent_dim != 2:
            raise WebDecoderError(f"A {latent_dim}-D latent needs a projection for its map.")
        center, components = np.zeros(2), np.eye(2)
    else:
        center, components = projection.center, projection.components
    center = np.asarray(center, np.float32).reshape(-1)
    components = np.asarray(components, np.float32)
    if center.shape != (latent_dim,) or components.shape != (2, latent_dim):
        raise WebDecoderError(f"The projection has shapes {center.shape} and "
                              f"{components.shape}, not ({latent_dim},) and (2, {latent_dim}).")
    return {"n": len(points), "points": blob.add("map/points", points),
            "labels": blob.add("map/labels", np.clip(labels, 0, 255), "u8"),
            "center": blob.add("map/center", center),
            "components": blob.add("map/components", components)}


def _digest(header: dict, data: bytes) -> str:
    text = json.dumps({k: v for k, v in header.items() if k != "hash"}, sort_keys=True)
    return hashlib.sha256(text.encode() + data).hexdigest()[:16]


def _pack(header: dict, data: bytes) -> bytes:
    header = {**header, "hash": _digest(header, data)}
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)
    return MAGIC + struct.pack("<II", VERSION, len(text)) + text + data


# ---- Parse and reference forward pass --------------------------------------------------------
def _header(payload: bytes) -> tuple[dict, int]:
    if len(payload) < 12 or payload[:4] != MAGIC:
        raise WebDecoderError("These bytes are not a browser-decoder payload.")
    version, length = struct.unpack("<II", payload[4:12])
    if version != VERSION:
        raise WebDecoderError(f"Payload version {version} is not the supported {VERSION}.")
    try:
        return json.loads(payload[12:12 + length]), 12 + length
    except ValueError:
        raise WebDecoderError("The payload's header is not valid JSON.") from None


def payload_hash(payload: bytes) -> str:
    """The hash a payload's header carries (read without parsing the tensors)."""
    return _header(payload)[0]["hash"]


def parse_payload(payload: bytes) -> WebDecoder:
    """The header and tensors of a payload; WebDecoderError if it is not a valid one."""
    payload = bytes(payload)
    header, start = _header(payload)
    data = payload[start:]
    if header.get("hash") != _digest(header, data):
        raise WebDecoderError("The payload's hash does not match its contents.")
    tensors = {}
    for name, entry in header["tensors"].items():
        dtype = np.dtype(_DTYPES[entry["dtype"]])
        count = int(np.prod(entry["shape"]))
        end = entry["offset"] + count * dtype.itemsize
        if end > len(data):
            raise WebDecoderError(f"Tensor {name!r} runs past the end of the payload.")
        tensors[name] = np.frombuffer(data, dtype, count, entry["offset"]).reshape(
            entry["shape"])
    return WebDecoder(header, tensors)


def _activate(x, name):
    if name == "relu":
        return np.maximum(x, 0)
    if name == "sigmoid":
        return np.exp(-np.logaddexp(0, -x))  # 1 / (1 + e^-x) without overflow
    if name == "tanh":
        return np.tanh(x)
    return x


def _dense(x, spec, p: WebDecoder):
    kernel, bias = p.tensor(spec["kernel"]), p.tensor(spec.get("bias"))
    quantizer = spec.get("input_quantizer")
    if "kernel_scale" not in spec:
        y = x @ kernel
    elif quantizer is None:
        y = x @ (kernel.astype(np.float32) / p.tensor(spec["kernel_scale"]))
    else:  # Keras's int8 path: abs-max round the inputs, integer matmul, divide both scales
        epsilon = np.float32(quantizer["epsilon"])
        scale = np.float32(quantizer["high"]) / (np.abs(x).max(-1, keepdims=True) + epsilon)
        q = np.clip(np.round(x * scale), quantizer["low"], quantizer["high"])
        acc = (q.astype(np.float64) @ kernel.astype(np.float64)).astype(np.float32)
        y = acc / (p.tensor(spec["kernel_scale"]) * scale)
    return _activate(y + bias if bias is not None else y, spec["activation"])


def _conv(x, spec, p: WebDecoder):
    kernel, bias = p.tensor(spec["kernel"]), p.tensor(spec.get("bias"))
    (kh, kw), (sy, sx) = spec["kernel_size"], spec["strides"]
    n, h, w, _ = x.shape
    oh, pt = conv_geometry(spec["type"], h, kh, sy, spec["padding"])
    ow, pl = conv_geometry(spec["type"], w, kw, sx, spec["padding"])
    y = np.zeros((n, oh, ow, kernel.shape[3]), np.float32)
    for ky in range(kh):
        for kx in range(kw):
            if spec["type"] == "conv2d":  # y[o] += x[o*s + k - pad]
                iy, ix = np.arange(oh) * sy + ky - pt, np.arange(ow) * sx + kx - pl
                oy, ox = np.arange(oh), np.arange(ow)
            else:  # y[i*s + k - pad] += x[i]
                oy, ox = np.arange(h) * sy + ky - pt, np.arange(w) * sx + kx - pl
                iy, ix = np.arange(h), np.arange(w)
            rows = (iy >= 0) & (iy < h) & (oy >= 0) & (oy < oh)
            cols = (ix >= 0) & (ix < w) & (ox >= 0) & (ox < ow)
            patch = x[:, iy[rows]][:, :, ix[cols]] @ kernel[ky, kx]
            y[:, oy[rows][:, None], ox[cols][None, :]] += patch
    return _activate(y + bias if bias is not None else y, spec["activation"])


def reference_decode(decoder: WebDecoder, z) -> np.ndarray:
    """Pixel probabilities (N, 28, 28) computed from the payload alone, like `model.decode`."""
    x = np.asarray(z, np.float32).reshape(-1, decoder.header["input_dim"])
    for spec in decoder.layers:
        if spec["type"] == "dense":
            x = _dense(x, spec, decoder)
        elif spec["type"] == "reshape":
            x = x.reshape(len(x), *spec["shape"])
        elif spec["type"] == "activation":
            x = _activate(x, spec["activation"])
        else:
            x = _conv(x, spec, decoder)
    return x.reshape(len(x), 28, 28).astype(np.float32)


def plane_to_decoder_inputs(decoder: WebDecoder, points, digit: int | None = None):
    """Decoder inputs for 2-D map points: `center + p @ components`, plus one-hot(digit) for a
    conditional model (what `vae_core.latent.decode_points` feeds the decoder)."""
    section = decoder.header["map"]
    points = np.atleast_2d(np.asarray(points, np.float32))
    z = decoder.tensor(section["center"]) + points @ decoder.tensor(section["components"])
    if decoder.header["conditional"]:
        slots = np.zeros((len(z), NUM_CLASSES), np.float32)
        slots[:, 0 if digit is None else digit] = 1
        z = np.concatenate([z, slots], axis=1)
    return z.astype(np.float32)
