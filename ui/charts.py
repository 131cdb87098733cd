"""Figures for the VAE Lab pages: Plotly charts and the home page's diagram.

Pure functions from data to figures (no Streamlit), so a chart looks the same wherever it is
shown and can be tested without a browser.
"""

from __future__ import annotations

import base64
from html import escape

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from vae_core import images

PALETTE = ("#4C78A8", "#F58518", "#E45756", "#72B7B2", "#54A24B",
           "#EECA3B", "#B279A2", "#FF9DA6", "#9D755D", "#6B6B6B")
LOSS_TERMS = (("loss", "Total loss"), ("reconstruction_loss", "Reconstruction"),
              ("kl_loss", "KL"), ("classification_loss", "Classification"))
MAX_LINE_POINTS = 1500


def loss_figure(batches: list[dict], epochs: list, steps_per_epoch: int,
                conditional: bool) -> go.Figure:
    """One panel per loss term: thin per-batch line, bold per-epoch train line, dashed test line."""
    terms = LOSS_TERMS if conditional else LOSS_TERMS[:3]
    fig = make_subplots(rows=1, cols=len(terms), subplot_titles=[t for _, t in terms],
                        horizontal_spacing=0.05)
    stride = max(1, len(batches) // MAX_LINE_POINTS)
    shown = batches[::stride]
    epoch_ends = [e.epoch * steps_per_epoch for e in epochs]
    epoch_middles = [(e.epoch - 0.5) * steps_per_epoch for e in epochs]  # a mean over the epoch
    for col, (key, _) in enumerate(terms, start=1):
        first = col == 1
        fig.add_trace(go.Scatter(
            x=[b["step"] for b in shown], y=[b.get(key) for b in shown], mode="lines",
            line=dict(width=1, color="rgba(76, 120, 168, 0.35)"), name="per batch",
            legendgroup="batch", showlegend=first), row=1, col=col)
        fig.add_trace(go.Scatter(
            x=epoch_middles, y=[e.metrics.get(key) for e in epochs], mode="lines+markers",
            line=dict(width=2.5, color=PALETTE[1]), name="epoch mean (training)",
            legendgroup="epoch", showlegend=first), row=1, col=col)
        if any(f"val_{key}" in e.metrics for e in epochs):
            fig.add_trace(go.Scatter(
                x=epoch_ends, y=[e.metrics.get(f"val_{key}") for e in epochs],
                mode="lines+markers", line=dict(width=2, dash="dot", color=PALETTE[4]),
                name="epoch (test images)", legendgroup="val", showlegend=first), row=1, col=col)
        epoch_values = [e.metrics.get(k) for e in epochs for k in (key, f"val_{key}")]
        fig.update_yaxes(range=_robust_range([b.get(key) for b in batches], epoch_values),
                         row=1, col=col)
    fig.update_xaxes(title_text="batch")
    fig.update_layout(height=320, margin=dict(l=10, r=10, t=40, b=10),
                      legend=dict(orientation="h", y=-0.3, x=0))
    return fig


def _robust_range(batch_values, epoch_values=()) -> list[float] | None:
    """A y-range that skips the first batches' huge losses (so the later curve stays legible)
    but keeps every epoch-level point in view."""
    def finite(values):
        values = np.asarray([v for v in values if v is not None], dtype=float)
        return values[np.isfinite(values)]

    values, epochs = finite(batch_values), finite(epoch_values)
    if len(values) < 20:
        return None
    tail = np.concatenate([values[min(len(values) // 10, 50):], epochs])
    low, high = float(tail.min()), float(np.quantile(tail, 0.99))
    if len(epochs):
        high = max(high, float(epochs.max()))
    pad = 0.1 * (high - low) or 1.0
    return [low - pad, high + pad]


def latent_scatter(points, labels, names, lim: float, *, axis_titles=("z₁", "z₂"),
                   prior_box: bool = False, height: int = 440,
                   legend_on_top: bool = False, selectable: bool = False) -> go.Figure:
    """Encoded means coloured by class, on a square [-lim, lim]² (same scale on both axes).

    `selectable`: dragging draws a selection box instead of zooming.
    """
    points, labels = np.asarray(points), np.asarray(labels)
    fig = go.Figure()
    for c, name in enumerate(names):
        mask = labels == c
        fig.add_trace(go.Scatter(
            x=points[mask, 0], y=points[mask, 1], mode="markers", name=name,
            marker=dict(size=5, color=PALETTE[c % len(PALETTE)], opacity=0.75),
            hovertemplate=f"<b>{escape(name)}</b><br>(%{{x:.2f}}, %{{y:.2f}})<extra></extra>"))
    if prior_box:
        fig.add_shape(type="rect", x0=-3, y0=-3, x1=3, y1=3,
                      line=dict(color="#888", width=1.5, dash="dash"))
    fig.update_xaxes(range=[-lim, lim], title_text=axis_titles[0], zeroline=True,
                     zerolinecolor="#ccc", constrain="domain")
    fig.update_yaxes(range=[-lim, lim], title_text=axis_titles[1], zeroline=True,
                     zerolinecolor="#ccc", scaleanchor="x", scaleratio=1, constrain="domain")
    legend = dict(itemsizing="constant", title_text="")
    if legend_on_top:
        legend.update(orientation="h", y=1.02, yanchor="bottom", x=0)
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10), legend=legend,
                      dragmode="select" if selectable else "zoom")
    return fig


def manifold_figure(image, lim: float, n: int, *, axis_titles=("z₁", "z₂"),
                    height: int = 440) -> go.Figure:
    """The decoded n x n grid drawn on the same axes as `latent_scatter` with the same `lim`.

    Grid images are centred on the grid points, so the picture reaches half a cell beyond lim.
    """
    extent = lim + (lim / (n - 1) if n > 1 else lim)
    fig = go.Figure(go.Scatter(x=[-lim, lim], y=[-lim, lim], mode="markers",
                               marker=dict(opacity=0), hoverinfo="skip", showlegend=False))
    fig.add_layout_image(source=_png_uri(image, scale=2), xref="x", yref="y", x=-extent,
                         y=extent, sizex=2 * extent, sizey=2 * extent, sizing="stretch",
                         layer="below")
    fig.update_xaxes(range=[-extent, extent], title_text=axis_titles[0], showgrid=False,
                     zeroline=False, constrain="domain")
    fig.update_yaxes(range=[-extent, extent], title_text=axis_titles[1], showgrid=False,
                     zeroline=False, scaleanchor="x", scaleratio=1, constrain="domain")
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10))
    return fig


def axis_titles(projection) -> tuple[str, str]:
    if projection.is_identity:
        return "z₁", "z₂"
    a, b = projection.explained
    return f"PCA axis 1 ({a:.0%} of variance)", f"PCA axis 2 ({b:.0%} of variance)"


# ---- The home page's picture of a VAE ----------------------------------------------------

def _png_uri(image, scale: int = 1) -> str:
    return "data:image/png;base64," + base64.b64encode(images.to_png(image, scale)).decode()


def vae_diagram(x=None, x_hat=None) -> str:
    """An SVG of encoder -> (mean, spread) -> sample -> decoder, and what the KL term does.

    `x` and `x_hat` (28x28 in [0, 1]) are drawn as the input and its reconstruction when given.
    Self-contained (no fonts or scripts fetched), so it renders offline.
    """
    blue, fill, grey = "#4C78A8", "#EEF3FA", "#555"

    def box(x0, y0, w, h, label, sub=""):
        return (f'<rect x="{x0}" y="{y0}" width="{w}" height="{h}" rx="10" fill="{fill}" '
                f'stroke="{blue}" stroke-width="1.5"/>'
                f'<text x="{x0 + w / 2}" y="{y0 + h / 2 - (6 if sub else -5)}" '
                f'text-anchor="middle" font-size="15" font-weight="600" fill="#1f2d3d">'
                f'{label}</text>'
                + (f'<text x="{x0 + w / 2}" y="{y0 + h / 2 + 14}" text-anchor="middle" '
                   f'font-size="12" fill="{grey}">{sub}</text>' if sub else ""))

    def trapezoid(x0, y0, w, h, narrowing, label, sub):
        inset = 22
        pts = ([(x0, y0), (x0 + w, y0 + inset), (x0 + w, y0 + h - inset), (x0, y0 + h)]
               if narrowing else
               [(x0, y0 + inset), (x0 + w, y0), (x0 + w, y0 + h), (x0, y0 + h - inset)])
        poly = " ".join(f"{a},{b}" for a, b in pts)
        return (f'<polygon points="{poly}" fill="{fill}" stroke="{blue}" stroke-width="1.5"/>'
                f'<text x="{x0 + w / 2}" y="{y0 + h / 2 - 4}" text-anchor="middle" '
                f'font-size="15" font-weight="600" fill="#1f2d3d">{label}</text>'
                f'<text x="{x0 + w / 2}" y="{y0 + h / 2 + 14}" text-anchor="middle" '
                f'font-size="12" fill="{grey}">{sub}</text>')

    def arrow(x0, y0, x1, y1, dashed=False):
        dash = ' stroke-dasharray="5,4"' if dashed else ""
        return (f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y1}" stroke="{grey}" '
                f'stroke-width="1.6"{dash} marker-end="url(#head)"/>')

    def picture(image, x0, y0, caption):
        inner = (f'<image href="{_png_uri(image)}" x="{x0}" y="{y0}" width="84" height="84" '
                 f'style="image-rendering:pixelated" preserveAspectRatio="none"/>'
                 if image is not None else
                 f'<rect x="{x0}" y="{y0}" width="84" height="84" fill="#222"/>')
        return (inner + f'<rect x="{x0}" y="{y0}" width="84" height="84" fill="none" '
                f'stroke="{grey}"/><text x="{x0 + 42}" y="{y0 + 104}" text-anchor="middle" '
                f'font-size="13" fill="#1f2d3d">{caption}</text>')

    mid = 105
    parts = [
        picture(x, 10, mid - 42, "image x"),
        arrow(100, mid, 122, mid),
        trapezoid(126, mid - 55, 100, 110, True, "Encoder", "q(z | x)"),
        arrow(228, mid - 25, 256, mid - 36), arrow(228, mid + 25, 256, mid + 36),
        box(260, mid - 62, 96, 46, "mean μ"), box(260, mid + 16, 96, 46, "spread σ"),
        arrow(358, mid - 36, 384, mid - 8), arrow(358, mid + 36, 384, mid + 8),
        box(388, mid - 30, 132, 60, "sample z", "z = μ + σ · ε"),
        box(388, 8, 132, 38, "", ""),
        f'<text x="454" y="32" text-anchor="middle" font-size="12" fill="{grey}">'
        f'noise ε ~ N(0, I)</text>',
        arrow(454, 47, 454, mid - 33),
        arrow(522, mid, 548, mid),
        trapezoid(552, mid - 55, 100, 110, False, "Decoder", "p(x | z)"),
        box(552, 184, 100, 40, "", ""),
        f'<text x="602" y="201" text-anchor="middle" font-size="12" fill="{grey}">'
        f'digit 0–9</text>'
        f'<text x="602" y="216" text-anchor="middle" font-size="11" fill="{grey}">'
        f'(conditional)</text>',
        arrow(602, 183, 602, mid + 57, dashed=True),
        arrow(654, mid, 676, mid),
        picture(x_hat, 680, mid - 42, "reconstruction"),
        # What the KL term does, right under the mean/spread boxes.
        f'<text x="308" y="190" text-anchor="middle" font-size="13" fill="{blue}" '
        f'font-weight="600">KL term</text>'
        f'<text x="308" y="207" text-anchor="middle" font-size="12" fill="{grey}">'
        f'keeps (μ, σ) close</text>'
        f'<text x="308" y="222" text-anchor="middle" font-size="12" fill="{grey}">'
        f'to N(0, I)</text>',
    ]
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 780 232" width="780" height="232" '
        'font-family="Helvetica, Arial, sans-serif">'
        '<defs><marker id="head" markerWidth="8" markerHeight="8" refX="7" refY="4" '
        f'orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="{grey}"/></marker></defs>'
        + "".join(parts) + "</svg>")
