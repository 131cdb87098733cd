"""Figures for the VAE Lab pages: Plotly charts and the home page's diagram.

Pure functions from data to figures (no Streamlit), so a chart looks the same wherever it is
shown and can be tested without a browser.
"""

from __future__ import annotations

import base64
import io
from html import escape

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from vae_core import images

PALETTE = ("#4C78A8", "#F58518", "#E45756", "#72B7B2", "#54A24B",
           "#EECA3B", "#B279A2", "#FF9DA6", "#9D755D", "#6B6B6B")
LOSS_TERMS = (("loss", "Total loss"), ("reconstruction_loss", "Reconstruction"),
              ("kl_loss", "KL"), ("classification_loss", "Classification"))
MAX_LINE_POINTS = 300
"""Per-batch points sent to the browser per loss term: longer runs are averaged in buckets, so
the live chart (redrawn every few seconds while training) stays small whatever the run length."""


def loss_figure(batches: list[dict], epochs: list, steps_per_epoch: int,
                conditional: bool) -> go.Figure:
    """One panel per loss term: thin per-batch line, bold per-epoch train line, dashed test line.

    At most MAX_LINE_POINTS per-batch points per panel: beyond that each point is the mean of a
    bucket of consecutive batches (drawn at the bucket's last step).
    """
    terms = LOSS_TERMS if conditional else LOSS_TERMS[:3]
    fig = make_subplots(rows=1, cols=len(terms), subplot_titles=[t for _, t in terms],
                        horizontal_spacing=0.05)
    steps = np.fromiter((b["step"] for b in batches), float, len(batches))
    bucket = max(1, -(-len(batches) // MAX_LINE_POINTS))
    epoch_ends = [e.epoch * steps_per_epoch for e in epochs]
    epoch_middles = [(e.epoch - 0.5) * steps_per_epoch for e in epochs]  # a mean over the epoch
    for col, (key, _) in enumerate(terms, start=1):
        first = col == 1
        values = np.fromiter((_number(b.get(key)) for b in batches), float, len(batches))
        x, y = _bucket_means(steps, values, bucket)
        fig.add_trace(go.Scatter(
            x=x, y=y, mode="lines", line=dict(width=1, color="rgba(76, 120, 168, 0.35)"),
            name="per batch" if bucket == 1 else f"per batch (mean of {bucket})",
            legendgroup="batch", showlegend=first, hoverinfo="skip"), row=1, col=col)
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
        fig.update_yaxes(range=_robust_range(values, epoch_values), row=1, col=col)
    fig.update_xaxes(title_text="batch")
    fig.update_layout(height=320, margin=dict(l=10, r=10, t=40, b=10),
                      legend=dict(orientation="h", y=-0.3, x=0))
    return fig


def _number(v) -> float:
    return np.nan if v is None else float(v)


def _bucket_means(x: np.ndarray, y: np.ndarray, bucket: int):
    """(last x, mean y) of consecutive buckets of `bucket` points; the last bucket may be short."""
    if bucket == 1 or len(x) == 0:
        return x, y
    starts = np.arange(0, len(x), bucket)
    ends = np.minimum(starts + bucket, len(x)) - 1
    with np.errstate(invalid="ignore"):
        sums = np.add.reduceat(np.where(np.isfinite(y), y, 0.0), starts)
        counts = np.add.reduceat(np.isfinite(y).astype(float), starts)
        means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return x[ends], means


def _robust_range(batch_values, epoch_values=()) -> list[float] | None:
    """A y-range that skips the first batches' huge losses (so the later curve stays legible)
    but keeps every epoch-level point in view."""
    def finite(values):
        if not isinstance(values, np.ndarray):
            values = np.asarray([np.nan if v is None else v for v in values], dtype=float)
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
                   legend_on_top: bool = False) -> go.Figure:
    """Encoded means coloured by class, on a square [-lim, lim]² (same scale on both axes)."""
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
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10), legend=legend)
    return fig


def latent_scatter_png(points, labels, lim: float, size: int = 360) -> bytes:
    """`latent_scatter` as a small static PNG (coloured dots on [-lim, lim]², axes through 0).

    The Train page shows this while a run is live: one image per epoch that the browser caches,
    instead of an interactive figure re-sent and re-laid-out on every refresh.
    """
    from PIL import Image

    points, labels = np.asarray(points, float), np.asarray(labels)
    canvas = np.full((size, size, 3), 255, np.uint8)
    middle = size // 2
    canvas[middle, :] = canvas[:, middle] = 214
    canvas[[0, -1], :] = canvas[:, [0, -1]] = 170
    finite = np.all(np.isfinite(points), axis=1)
    cols = np.clip(np.rint((points[finite, 0] + lim) / (2 * lim) * (size - 1)), 1, size - 2)
    rows = np.clip(np.rint((lim - points[finite, 1]) / (2 * lim) * (size - 1)), 1, size - 2)
    colours = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in PALETTE], np.uint8)
    for r, c, label in zip(rows.astype(int), cols.astype(int), labels[finite]):
        canvas[r - 1:r + 2, c - 1:c + 2] = colours[int(label) % len(PALETTE)]
    buffer = io.BytesIO()
    Image.fromarray(canvas).save(buffer, format="PNG")
    return buffer.getvalue()


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


def mark_point(fig: go.Figure, point, name: str = "your digit") -> go.Figure:
    """A big star at `point` (x, y) on a latent scatter: where one image lands."""
    fig.add_trace(go.Scatter(
        x=[float(point[0])], y=[float(point[1])], mode="markers", name=name,
        marker=dict(symbol="star", size=22, color="#FFD700", line=dict(color="#222", width=1.5)),
        hovertemplate=f"<b>{escape(name)}</b><br>(%{{x:.2f}}, %{{y:.2f}})<extra></extra>"))
    return fig


def probability_bars(probs, names, height: int = 260) -> go.Figure:
    """The classifier's probability for each class, the most likely one highlighted."""
    probs = np.asarray(probs, float)
    best = int(np.argmax(probs))
    fig = go.Figure(go.Bar(
        x=list(names), y=probs, marker_color=[PALETTE[1] if i == best else PALETTE[0]
                                              for i in range(len(probs))],
        text=[f"{p:.0%}" if p >= 0.01 else "" for p in probs], textposition="outside",
        hovertemplate="%{x}: %{y:.1%}<extra></extra>"))
    fig.update_yaxes(range=[0, 1.15], tickformat=".0%", title_text="probability")
    fig.update_xaxes(type="category")
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10))
    return fig


def history_animation(snapshots, names, lim: float, *, axis_titles=("z₁", "z₂"),
                      height: int = 480) -> go.Figure:
    """The training snapshots' latent maps as Plotly animation frames, one per epoch, with a
    play button and an epoch slider (all frames share the first frame's axes)."""
    def traces(i):
        points, labels = snapshots.points[i], snapshots.labels
        return [go.Scatter(x=points[labels == c, 0], y=points[labels == c, 1], mode="markers",
                           name=name, marker=dict(size=5, color=PALETTE[c % len(PALETTE)],
                                                  opacity=0.75),
                           hovertemplate=f"<b>{escape(name)}</b><extra></extra>")
                for c, name in enumerate(names)]

    epochs = [int(e) for e in snapshots.epochs]
    fig = latent_scatter(snapshots.points[0], snapshots.labels, names, lim,
                         axis_titles=axis_titles, height=height)
    fig.frames = [go.Frame(data=traces(i), name=str(e)) for i, e in enumerate(epochs)]
    play = dict(frame=dict(duration=500, redraw=False), transition=dict(duration=250),
                fromcurrent=True, mode="immediate")
    fig.update_layout(
        updatemenus=[dict(type="buttons", showactive=False, x=0, y=-0.08, xanchor="left",
                          yanchor="top", direction="left", buttons=[
                              dict(label="▶ Play", method="animate", args=[None, play]),
                              dict(label="❚❚ Pause", method="animate",
                                   args=[[None], dict(frame=dict(duration=0, redraw=False),
                                                      mode="immediate")])])],
        sliders=[dict(active=0, x=0.22, y=-0.05, len=0.78, currentvalue=dict(prefix="Epoch "),
                      steps=[dict(label=str(e), method="animate",
                                  args=[[str(e)], dict(mode="immediate",
                                                       frame=dict(duration=0, redraw=False),
                                                       transition=dict(duration=0))])
                             for e in epochs])],
        margin=dict(l=10, r=10, t=10, b=90))
    return fig


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


COMPARE_COLOURS = ("#4C78A8", "#F58518", "#54A24B", "#B279A2")
COMPARE_TERMS = (("loss", "Total loss"), ("reconstruction_loss", "Reconstruction"),
                 ("kl_loss", "KL"), ("classification_loss", "Classification"))


def test_elbo(history: dict) -> list[float]:
    """The test-set ELBO after each epoch, -(reconstruction + KL) of the test images (KL
    unweighted, whatever beta was); empty when the run recorded no test pass."""
    recon, kl = history.get("val_reconstruction_loss") or [], history.get("val_kl_loss") or []
    return [-(r + k) for r, k in zip(recon, kl)]


def compare_curves(runs: list[tuple[str, dict]]) -> go.Figure:
    """Per-epoch curves of several runs overlaid, one panel per loss term plus the test ELBO:
    each run one colour, training solid, test images dotted."""
    terms = [t for t in COMPARE_TERMS if any(h.get(t[0]) for _, h in runs)]
    panels = [title for _, title in terms] + ["Test ELBO (higher is better)"]
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=panels,
                        horizontal_spacing=0.06)
    for i, (label, history) in enumerate(runs):
        colour = COMPARE_COLOURS[i % len(COMPARE_COLOURS)]
        for col, (key, _) in enumerate(terms, start=1):
            for prefix, dash in (("", "solid"), ("val_", "dot")):
                values = history.get(prefix + key) or []
                if values:
                    fig.add_trace(go.Scatter(
                        x=list(range(1, len(values) + 1)), y=values, mode="lines+markers",
                        name=label, legendgroup=label, showlegend=col == 1 and not prefix,
                        line=dict(color=colour, dash=dash, width=2), marker=dict(size=4),
                        hovertemplate=f"{escape(label)}<br>epoch %{{x}}: %{{y:.2f}}"
                                      + (" (test)" if prefix else " (training)")
                                      + "<extra></extra>"), row=1, col=col)
        elbo = test_elbo(history)
        if elbo:
            fig.add_trace(go.Scatter(
                x=list(range(1, len(elbo) + 1)), y=elbo, mode="lines+markers", name=label,
                legendgroup=label, showlegend=False, line=dict(color=colour, dash="dot", width=2),
                marker=dict(size=4), hovertemplate=f"{escape(label)}<br>epoch %{{x}}: "
                                                   "%{y:.1f} nats<extra></extra>"),
                row=1, col=len(panels))
    fig.update_xaxes(title_text="epoch")
    fig.update_layout(height=330, margin=dict(l=10, r=10, t=40, b=10),
                      legend=dict(orientation="h", y=-0.3, x=0))
    return fig
