"""Every shipped model draws exactly what it drew before the clean-up of issue 31.

tests/data/shipped_outputs.npz was written at the tag research-pass-15 (commit cbfd7ae) by
`outputs(model)` below: grids for every sampler a model offers, encodings and class readings of
its own samples, and a restyle (only the first rows of some grids were kept). Pixels are
stored as round(p * 65535).
"""

from pathlib import Path

import numpy as np
import pytest

import vae_core
from vae_core import samplers

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = Path(__file__).parent / "data" / "shipped_outputs.npz"
SHIPPED = ("mnist_conditional", "mnist_2d_kl_on", "mnist_2d_kl_off", "fashion_conditional",
           "fashion_2d_kl_on")


def outputs(model) -> dict:
    out = {}
    names = samplers.available(model)
    for i, sampler in enumerate(names):
        seeds = [0, 1] if i == 0 else [3]
        out[f"grid/{sampler}"] = model.generate_grid(seeds, range(10), sampler=sampler)
    images = out[f"grid/{names[0]}"].reshape(-1, 28, 28)[:10]
    out["encode_mean"], out["encode_log_var"] = model.encode(images)
    if model.config.conditional:
        out["classify"] = model.classify(images)
        out["restyle"] = model.restyle(images[:1], range(10))
    return out


@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_model_draws_what_it_drew_before(name):
    reference = np.load(REFERENCE)
    model = vae_core.load_checkpoint(ROOT / "checkpoints" / name)
    got = outputs(model)
    expected = {k.split("/", 1)[1]: reference[k] for k in reference.files
                if k.startswith(name + "/")}
    assert set(got) >= set(expected)
    for key, want in expected.items():
        have = got[key][: len(want)]
        if want.dtype == np.uint16:  # pixels
            have = np.round(np.asarray(have, np.float64) * 65535)
            assert np.abs(have - want).max() <= 1, key
        else:
            np.testing.assert_allclose(have, want, atol=1e-5, err_msg=key)
