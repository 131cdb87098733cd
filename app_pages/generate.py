"""Generate: pick a digit (or all ten) and a style seed; see the grid, download it as a PNG.

The model, digit, seed and count are kept in the URL (ui/share.py): a copied URL opens the same
picture."""

import math

import streamlit as st

from ui import catalog, pictures, share
from vae_core import images, samplers

ALL = "all"

st.title("Generate")
model = catalog.require_active_model()
names = catalog.class_names(model)
conditional = model.config.conditional
thing = "digit" if model.config.dataset == "mnist" else "garment"

if not conditional:
    st.caption(f"This model is **unconditional**: it was never told which {thing} it was "
               "looking at, so you cannot ask for one. It draws random samples from its prior "
               "instead. Pick a conditional model in the sidebar to choose.")
all_ten = conditional and st.session_state.get("gen_digit", ALL) == ALL

st.session_state.setdefault("gen_seed", 0)
seed_col, button_col, count_col, temp_col = st.columns([2, 1.5, 3, 3], vertical_alignment="bottom")
with seed_col:
    seed = st.number_input("Style seed", 0, 2**31 - 1, step=1, key="gen_seed",
                           persist_state="session",
                           help="The same seed always gives the same style (handwriting).")
with button_col:
    st.button("New style", icon=":material/casino:", key="gen_new_style",
              on_click=lambda: st.session_state.update(gen_seed=pictures.new_seed()),
              help="Pick a random style seed.")
with count_col:
    count = st.slider("Styles (rows)" if all_ten else "Samples", 1, 12 if all_ten else 40,
                      6 if all_ten else 16, key=f"gen_count_{all_ten}", persist_state="session",
                      help="Each row uses the next seed: seed, seed + 1, …" if all_ten else
                           "How many images to draw.")
with temp_col:
    temperature = st.slider("Temperature", 0.0, 2.0, 1.0, 0.1, key="gen_temperature",
                            persist_state="session",
                            help="How far from the average style to sample. 0 gives the most "
                                 "typical style; above 1 gets adventurous, and eventually "
                                 "messy.")

SAMPLER_NAMES = {"class": "Each digit's own styles (class-matched)",
                 "mixture": "Where real styles lie (fitted mixture)",
                 "normal": "Standard normal N(0, I)"}
sampler = None  # the model's default
offered = samplers.available(model)
if len(offered) > 1:
    sampler = st.radio(
        "Draw styles from", offered, format_func=SAMPLER_NAMES.get, horizontal=True,
        key=f"gen_sampler_{'_'.join(offered)}",  # a model with other samplers: a fresh choice
        persist_state="session",
        help="Class-matched: the seed's style is written into each digit's own range of real "
             "styles, so no digit is drawn in a hand only another digit has. The fitted mixture "
             "samples styles where the encoder put the training images, whatever their digit. "
             "N(0, I) is the VAE's own prior: it also lands in the gaps between real styles, "
             "where the decoder only guesses (blurrier).")



@st.fragment
def picture(seed: int, count: int, temperature: float, sampler, all_ten: bool):
    """The digit choice and the picture: picking another digit reruns only this."""
    choice = st.pills(
        f"Which {thing}", [ALL, *range(10)], default=ALL, required=True, key="gen_digit",
        persist_state="session",
        format_func=lambda c: f"All ten {thing}s" if c == ALL else names[c],
        disabled=not conditional,
        help=f"One {thing} in many styles, or all ten side by side (each row one style).")
    if (conditional and choice == ALL) != all_ten:
        st.rerun()  # between one digit and all ten: the count slider above changes too
    seeds = [int(seed) + i for i in range(count)]
    if all_ten:
        grid = model.generate_grid(seeds, list(range(10)), temperature, sampler)  # rows: styles
        caption = f"Rows: style seeds {seeds[0]}–{seeds[-1]}. Columns: " + ", ".join(names) + "."
    elif conditional:
        grid = model.generate_grid(seeds, [choice], temperature, sampler)[:, 0]  # many styles
        caption = f"{names[choice]} in {count} styles (seeds {seeds[0]}–{seeds[-1]})."
    else:
        grid = model.generate_grid([int(seed)], list(range(count)), temperature, sampler)[0]
        caption = f"{count} samples from the prior (seed {int(seed)})."
    # A (styles, digits) grid keeps its shape; a list of images wraps into a near-full rectangle.
    image = images.tile(grid, cols=math.ceil(count / math.ceil(count / 10)))
    pictures.show(image, caption, scale=3)
    st.download_button("Download PNG", lambda: images.to_png(image, scale=4),  # on click only
                       key="gen_download", file_name=f"vae-lab-{choice}-seed{int(seed)}.png",
                       mime="image/png", icon=":material/download:")
    share.write_generate_url(catalog.active_key(), choice, seed, count)  # a URL shares this


picture(int(seed), count, temperature, sampler, all_ten)
