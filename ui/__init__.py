"""The browser interface: a thin Gradio shell over ``assistant.Assistant`` (no retrieval or answer logic).

``ui.app.build_app(assistant, settings)`` builds the Blocks app and ``ui.app.launch`` serves it;
``ui.access`` decides who may connect. Importing this package does not import Gradio.
"""
