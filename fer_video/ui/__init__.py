"""The fer-video Gradio app (see app.py)."""
