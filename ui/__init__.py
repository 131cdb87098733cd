"""What several VAE Lab pages share, one module per concern.

- `errors`: problems shown as calm messages, never tracebacks
- `models`: where models come from (shipped checkpoints, this visitor's runs) and their cache
- `sidebar`: the model picker and the checkpoint upload, the same on every page
- `jobs`: this visitor's background training run and the process-wide training slots
- `latent_views`: encoded test images on a plane, cached per model
- `pictures`: crisp digit images
- `charts`: Plotly figures and the home page's diagram (no Streamlit)

All real work is in `vae_core`; these modules only connect it to Streamlit.
"""
