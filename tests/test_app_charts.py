"""The app's figure builders and small helpers, without Streamlit running."""

import xml.etree.ElementTree as ET
from types import SimpleNamespace

import numpy as np

import vae_core
from ui import charts
from vae_core.training import EpochPreview


def preview(epoch, loss):
    return EpochPreview(epoch, {"loss": loss, "val_loss": loss - 1, "kl_loss": 3.0,
                                "reconstruction_loss": loss - 3},
                        0, np.zeros((10, 28, 28)), np.zeros((8, 28, 28)), None)


def test_loss_figure_has_a_panel_per_term_and_keeps_epoch_points_in_view():
    batches = [{"step": i + 1, "epoch": 1 + i // 50, "loss": 500.0 if i < 3 else 150.0 - i / 10,
                "reconstruction_loss": 140.0, "kl_loss": 5.0} for i in range(100)]
    fig = charts.loss_figure(batches, [preview(1, 190.0), preview(2, 145.0)], 50,
                             conditional=False)
    titles = [a.text for a in fig.layout.annotations]
    assert titles == ["Total loss", "Reconstruction", "KL"]
    low, high = fig.layout.yaxis.range
    assert high < 500 and high >= 190  # the first batches' spike is cut, the epoch mean is not
    names = {t.name for t in fig.data}
    assert {"per batch", "epoch mean (training)", "epoch (test images)"} <= names
    conditional = charts.loss_figure(batches, [], 50, conditional=True)
    assert [a.text for a in conditional.layout.annotations][-1] == "Classification"


def test_latent_scatter_one_trace_per_class_on_a_square():
    points = np.random.default_rng(0).normal(size=(200, 2))
    labels = np.arange(200) % 10
    names = vae_core.CLASS_NAMES["fashion_mnist"]
    fig = charts.latent_scatter(points, labels, names, 3.0, prior_box=True)
    assert [t.name for t in fig.data] == list(names)
    assert sum(len(t.x) for t in fig.data) == 200
    assert list(fig.layout.xaxis.range) == [-3.0, 3.0] == list(fig.layout.yaxis.range)
    assert fig.layout.yaxis.scaleanchor == "x"
    assert len(fig.layout.shapes) == 1


def test_manifold_figure_spans_the_grid_cells():
    fig = charts.manifold_figure(np.zeros((5 * 28, 5 * 28)), 2.0, 5)
    image = fig.layout.images[0]
    assert image.source.startswith("data:image/png;base64,")
    assert image.sizex == image.sizey == 2 * (2.0 + 0.5)  # half a cell beyond +-lim


def test_diagram_is_self_contained_svg():
    for args in [(), (np.zeros((28, 28)), np.ones((28, 28)))]:
        svg = charts.vae_diagram(*args)
        root = ET.fromstring(svg)
        assert root.tag.endswith("svg")
        assert "http://" not in svg.replace("http://www.w3.org/2000/svg", "")
    assert svg.count("data:image/png;base64,") == 2
