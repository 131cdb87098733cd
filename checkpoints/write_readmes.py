"""Write each shipped checkpoint's README.md (its model card) and the table of shipped models in
the project README from the card.json files, so no number in them is ever typed by hand.

    python checkpoints/write_readmes.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from vae_core.config import VAEConfig  # noqa: E402
from vae_core.data import CLASS_NAMES  # noqa: E402
from vae_core.quality import AGREEMENT_BARS, CLASS_AGREEMENT_BAR, FD_RATIO_BARS  # noqa: E402

SHIPPED = {
    "mnist_conditional": "MNIST, digit-conditioned: the Generate page's default. Pick a digit and "
                         "a style seed; the style is shared across digits.",
    "mnist_2d_kl_on": "MNIST, unconditional, 2-D latent, KL on (beta = 1): the Latent page's "
                      "well-behaved half of the comparison pair.",
    "mnist_2d_kl_off": "MNIST, unconditional, 2-D latent, KL off (beta = 0): same architecture, "
                       "seed and epochs as mnist_2d_kl_on, so the only difference is the KL term.",
    "fashion_conditional": "Fashion-MNIST, class-conditioned: the garment selector.",
    "fashion_2d_kl_on": "Fashion-MNIST, unconditional, 2-D latent, KL on (beta = 1).",
}
PAIR = ("mnist_2d_kl_on", "mnist_2d_kl_off")
LOSS_NAMES = {"bce": "BCE", "mse": "MSE"}
README = HERE.parent / "README.md"
TABLE = ("<!-- models -->", "<!-- /models -->")


def load_card(name: str) -> dict:
    return json.loads((HERE / name / "card.json").read_text())


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def model_card(name: str, card: dict, cards: dict) -> str:
    ev, q = card["evaluation"], card.get("quality", {})
    cfg = json.loads((HERE / name / "config.json").read_text())
    size_mb = (HERE / name / "model.keras").stat().st_size / 2**20
    lines = [
        f"# {name}",
        "",
        SHIPPED.get(name, ""),
        "",
        "## How it was made",
        "",
        "```bash",
        card["command"],
        "```",
        "",
        f"- {cfg['arch'].upper()} VAE"
        + (f" (conv width {cfg.get('conv_width', 32)}{detail_text(cfg)})"
           if cfg["arch"] == "conv" else "")
        + f", hidden {cfg['hidden']}, style latent {cfg['latent_dim']}"
        + (" + 10 class slots" if cfg["conditional"] else "")
        + f", beta {cfg['beta']:g}, KL warm-up {cfg['kl_warmup_epochs']} epochs, "
        f"{LOSS_NAMES[cfg['recon_loss']]} loss, lr {cfg['learning_rate']:g}, "
        f"batch {cfg['batch_size']}, "
        f"seed {cfg['seed']}.",
        *recipe_lines(cfg),
        f"- Trained {card['epochs_trained']} epochs in **{card['training_seconds']:.0f} s** on a "
        f"shared {card.get('cpu', '2-core CPU')} "
        f"(Keras {card.get('keras_version', '?')}, {card['created']}).",
        f"- `model.keras`: {size_mb:.2f} MB (weights only, no optimizer state).",
        "",
        "## Test-set evaluation (`python -m vae_core evaluate`)",
        "",
        "| ELBO (nats / image) | reconstruction | KL | active units |"
        + (" classifier accuracy |" if "classifier_accuracy" in ev else ""),
        "|---|---|---|---|" + ("---|" if "classifier_accuracy" in ev else ""),
        f"| **{ev['elbo']:.1f}** | {ev['reconstruction']:.1f} | {ev['kl']:.2f} | "
        f"{ev['active_units']} of {ev['latent_dim']} |"
        + (f" {pct(ev['classifier_accuracy'])} |" if "classifier_accuracy" in ev else ""),
        "",
        f"*Meaning:* {ev['meaning']} The KL column is unweighted (as if beta = 1) whatever beta "
        f"the model was trained with; active units are latent dimensions whose mean KL exceeds "
        f"0.01 nats.",
        "",
    ]
    if cfg["beta"] == 0:
        lines += ["Trained with beta = 0, this model never paid for its KL: the KL above (and so "
                  "the ELBO) shows how far its posteriors wandered from the N(0, I) prior, which "
                  "is also why samples drawn from that prior cover only a few digit shapes.", ""]
    if q:
        judge = q["judge"]
        lines += ["## Sample quality (`python -m vae_core quality`)", "",
                  f"Scored by an independent judge CNN (`checkpoints/judges/{judge['file']}`, "
                  f"trained on the real training set, {pct(judge['test_accuracy'])} test accuracy, "
                  f"mean confidence {judge['mean_confidence_on_real_test']:.3f} on real test "
                  f"images); it shares nothing with the VAE's own classifier head.", ""]
        if "conditional" in q:
            c = q["conditional"]
            bar = AGREEMENT_BARS[cfg["dataset"]]
            verdict = "meets" if c["agreement"] >= bar else "**misses**"
            worst = min(c["per_class_agreement"])
            class_verdict = "meets" if worst >= CLASS_AGREEMENT_BAR else "**misses**"
            names = CLASS_NAMES[cfg["dataset"]]
            sampler = sampler_text(q.get("fd", {}).get("sampler", "normal"), cfg)
            lines += [
                f"- **Judge agreement: {pct(c['agreement'])}** over {c['samples']} samples "
                f"({c['style_seeds']} style seeds x 10 classes, styles from {sampler}): "
                f"the judge's top class is the requested one. The target is "
                f"{pct(bar)}: this model {verdict} it.",
                f"- Judge mean confidence on the samples: {c['mean_confidence']:.3f} (top class); "
                f"{c['mean_prob_requested']:.3f} for the requested class.",
                "- Per-class agreement: " + ", ".join(
                    f"{names[k]}: {pct(a)}" for k, a in enumerate(c["per_class_agreement"]))
                + f". Worst class {pct(worst)}; the target is {pct(CLASS_AGREEMENT_BAR)} for "
                f"every class: this model {class_verdict} it.",
            ]
            if "conditional_normal" in q:
                n = q["conditional_normal"]
                lines.append(f"- With styles from N(0, I) instead of {sampler}: "
                             f"agreement {pct(n['agreement'])}, worst class "
                             f"{pct(min(n['per_class_agreement']))}.")
            lines.append("- How the recipe was chosen: [docs/tuning.md](../../docs/tuning.md).")
        if "fd" in q:
            lines += fd_lines(q, cfg)
        if "style_novelty" in q:
            nov = q["style_novelty"]
            lines.append(f"- New styles, not copies: a sampled style's median distance to the "
                         f"nearest encoded training style of its class is "
                         f"**{nov['samples_median']:.2f}**, against {nov['test_median']:.2f} for "
                         f"the test images' own styles ({nov['ratio']:.2f}x; in each class's "
                         f"whitened frame, {nov['style_seeds']} seeds x 10 classes).")
        if "prior_samples" in q:
            p, names = q["prior_samples"], CLASS_NAMES[cfg["dataset"]]
            lines += [
                f"- {p['samples']} samples from the N(0, I) prior: judge mean confidence "
                f"{p['mean_confidence']:.3f}; classes seen: " + ", ".join(
                    f"{names[k]}: {pct(f)}" for k, f in enumerate(p["class_fractions"])) + ".",
            ]
        lat = q["latent"]
        lines += [f"- Std of the encoded test means: **{lat['encoded_mean_std']:.2f}** "
                  f"(per dim: {', '.join(f'{s:.2f}' for s in lat['encoded_mean_std_per_dim'])}; "
                  f"largest |mean| {lat['encoded_mean_abs_max']:.1f}). The prior's std is 1."]
        if name in PAIR and all(n in cards and "quality" in cards[n] for n in PAIR):
            on, off = (cards[n]["quality"]["latent"]["encoded_mean_std"] for n in PAIR)
            lines += [f"- KL on vs KL off (same architecture, seed, epochs): encoded-mean std "
                      f"{on:.2f} vs {off:.2f} ({off / on:.1f}x)."]
        lines.append("")
    lines += ["## Samples", "",
              ("Rows: style seeds 0-3; columns: classes 0-9 (one style per row)."
               if cfg["conditional"] else
               "Four rows of ten samples from the N(0, I) prior (seeds 0-3)."), "",
              "![samples](samples.png)", ""]
    if (HERE / name / "latent.png").exists():
        lines += ["Encoded means of the first 5,000 test images, coloured by class (grey rings: "
                  "1, 2 and 3 prior standard deviations):", "", "![latent](latent.png)", ""]
    return "\n".join(lines)


SAMPLER_TEXT = {"class": "class-matched Gaussians", "mixture": "the fitted mixture",
                "normal": "N(0, I)"}


def sampler_text(sampler: str, cfg: dict) -> str:
    if sampler == "class" and cfg.get("class_style_anchors"):
        return "a kernel density around each class's kept styles"
    return SAMPLER_TEXT[sampler]


def detail_text(cfg: dict) -> str:
    n = cfg.get("decoder_detail_convs", 0)
    if not n:
        return ""
    return (f"; {n} decoder detail convolution{'s' if n > 1 else ''} at full 28x28 "
            f"resolution before the output layer")


def recipe_lines(cfg: dict) -> list[str]:
    parts = []
    # --decoded-styles: what the consistency and realism terms decode with random classes
    prior = cfg.get("decoded_styles") == "prior"
    decoded = ("fresh N(0, I) style draws (what samples use)" if prior
               else "shuffled style codes")
    if cfg.get("encoder_conditional"):
        parts.append("the encoder also reads the classifier's (stop-gradient) softmax, "
                     "q(z | x, c)")
    if cfg.get("consistency_weight", 0) > 0:
        parts.append(f"class-consistency loss (weight {cfg['consistency_weight']:g}): "
                     f"{decoded} decoded with random one-hots must be read as the requested "
                     f"class by the model's own classifier (frozen for this term; trains the "
                     f"decoder only)")
    if cfg.get("style_adversary_weight", 0) > 0:
        parts.append(f"style adversary (weight {cfg['style_adversary_weight']:g}): a small "
                     f"network learns to read the class from the encoded style mean, and the "
                     f"encoder is trained to leave it guessing, so the style carries little of "
                     f"the class and any style decodes as any class")
    if cfg.get("realism_weight", 0) > 0:
        width = cfg.get("critic_width", VAEConfig.critic_width)
        layers = f"{width} and {2 * width}"
        parts.append(f"realism term (weight {cfg['realism_weight']:g}): an image critic "
                     f"(stride-2 convolutions of {layers} channels) learns to tell training "
                     f"images from decoded {decoded}"
                     + (" and from the batch's reconstructions (each kind at half the weight)"
                        if cfg.get("realism_on_reconstructions") else "")
                     + ", and the decoder (only) is trained to fool it: sharp strokes instead "
                       "of a grey blur")
    if cfg.get("adam_beta1", VAEConfig.adam_beta1) != VAEConfig.adam_beta1:
        parts.append(f"Adam's momentum beta1 is {cfg['adam_beta1']:g} instead of "
                     f"{VAEConfig.adam_beta1:g}")
    if cfg.get("ema_momentum", 0) > 0:
        parts.append(f"the weights are a moving average of the trained ones (momentum "
                     f"{cfg['ema_momentum']:g}, about the last "
                     f"{1 / (1 - cfg['ema_momentum']):,.0f} "
                     f"steps), taken at the end of the run")
    k = cfg.get("style_prior_components", 0)
    if k and cfg.get("class_matched_styles"):
        parts.append(f"a {k}-component full-covariance Gaussian mixture fitted to the encoded "
                     f"training styles is stored inside model.keras too (a Generate-page option)")
    elif k:
        parts.append(f"styles are sampled from a {k}-component "
                     f"full-covariance Gaussian mixture fitted to the encoded training styles "
                     f"after training (stored inside model.keras); N(0, I) remains available")
    if cfg.get("class_matched_styles"):
        parts.append("class-matched styles (the default sampler): one full-covariance Gaussian "
                     "per class is fitted to the encoded training styles, and a seed's noise is "
                     "written into each class's own spread, so a seed is one hand for every "
                     "class")
    if cfg.get("class_style_anchors"):
        parts.append(f"kept styles: {cfg['class_style_anchors']:,} encoded training styles per "
                     f"class are stored, and each class is sampled as a kernel density around "
                     f"them (bandwidth {cfg.get('class_style_bandwidth', 0.5):g} of the class's "
                     f"spread); the seed's noise picks one kept style of every class through the "
                     f"optimal transport map from N(0, I), so every kept style is equally likely "
                     f"and a seed still means the same place in each class's spread")
    return [f"- {p[0].upper()}{p[1:]}." for p in parts]


def fd_lines(q: dict, cfg: dict) -> list[str]:
    fd = q["fd"]
    bar = FD_RATIO_BARS.get(cfg["dataset"])
    lines = [
        f"- **Frechet distance of {fd['samples_scored']:,} samples to the test set: "
        f"{fd['samples']:.2f}, {fd['samples_ratio']:.1f}x the real-data floor** "
        f"({fd['floor']:.3f} = 10,000 real training images vs the test set), in the judge's "
        f"penultimate-layer (Dense-64) feature space; styles from "
        f"{sampler_text(fd['sampler'], cfg)}."
        + (f" The target for conditional models is at most {bar:g}x: this model "
           f"{'meets' if fd['samples_ratio'] <= bar else '**misses**'} it."
           if cfg["conditional"] and bar else ""),
        f"- Reconstructions of the test set (diagnostic: what the decoder can draw): FD "
        f"{fd['reconstructions']:.2f}, {fd['reconstructions_ratio']:.1f}x the floor.",
    ]
    if "fd_normal" in q:
        normal = q["fd_normal"]
        lines.append(f"- Samples with styles from N(0, I) instead: FD {normal['samples']:.2f}, "
                     f"{normal['samples_ratio']:.1f}x the floor (compare: what sampling "
                     f"from {sampler_text(fd['sampler'], cfg)} changes).")
    return lines


def models_table(cards: dict) -> str:
    """The project README's table of shipped models, one row per card."""
    lines = ["| checkpoint | what it is | trained | test ELBO | judge agreement (worst class) | "
             "sample FD / real-data floor |", "|---|---|---|---|---|---|"]
    for name, card in cards.items():
        ev, q = card["evaluation"], card.get("quality", {})
        c = q.get("conditional")
        agree = f"{pct(c['agreement'])} ({pct(min(c['per_class_agreement']))})" if c else "-"
        fd = f"{q['fd']['samples_ratio']:.1f}x" if "fd" in q and c else "-"
        what = SHIPPED[name].split(':')[0].rstrip('.')
        lines.append(f"| [{name}](checkpoints/{name}/README.md) | {what} "
                     f"| {card['training_seconds']:,.0f} s | {ev['elbo']:.1f} | {agree} | {fd} |")
    return "\n".join(lines)


def write_table(cards: dict):
    text = README.read_text()
    start, end = (text.index(marker) for marker in TABLE)
    README.write_text(text[:start + len(TABLE[0])] + "\n" + models_table(cards) + "\n"
                      + text[end:])


def main() -> int:
    cards = {n: load_card(n) for n in SHIPPED if (HERE / n / "card.json").exists()}
    for name, card in cards.items():
        (HERE / name / "README.md").write_text(model_card(name, card, cards))
    write_table(cards)
    print(f"wrote {len(cards)} model cards and the README's table of shipped models")
    return 0


if __name__ == "__main__":
    sys.exit(main())
