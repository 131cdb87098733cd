"""VAE Lab: `streamlit run app.py`. Page config, navigation and the shared sidebar."""

import streamlit as st

from ui import errors, pictures, runtime, share, sidebar

runtime.keep_keras_state()  # no keras clear_session() after every (fragment) rerun
runtime.single_threaded_blas()  # numpy's BLAS threads spin after every call

st.set_page_config(page_title="VAE Lab", page_icon=":material/blur_on:", layout="wide")

pages = st.navigation([
    st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("app_pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("app_pages/generate.py", title="Generate", icon=":material/draw:"),
    st.Page("app_pages/latent.py", title="Latent space", icon=":material/scatter_plot:"),
    st.Page("app_pages/digit.py", title="Your digit", icon=":material/gesture:"),
    st.Page("app_pages/compare.py", title="Compare", icon=":material/compare:"),
])
pictures.crisp_images()
with errors.friendly_errors():
    share.apply_url()  # a shared Generate URL sets the model picker too, so before the sidebar
    sidebar.draw()
with errors.friendly_errors():
    pages.run()
