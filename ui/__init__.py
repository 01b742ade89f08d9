"""The browser UI: a login page and the Gradio app (chat and admin console)."""
