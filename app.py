"""VAE Lab: `streamlit run app.py`. Page config, navigation and the shared sidebar."""

import streamlit as st

from ui import errors, pictures, sidebar

st.set_page_config(page_title="VAE Lab", page_icon=":material/blur_on:", layout="wide")

pages = st.navigation([
    st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("app_pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("app_pages/generate.py", title="Generate", icon=":material/draw:"),
    st.Page("app_pages/latent.py", title="Latent space", icon=":material/scatter_plot:"),
])
pictures.crisp_images()
with errors.friendly_errors():
    sidebar.draw()
with errors.friendly_errors():
    pages.run()
