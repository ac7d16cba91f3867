"""The notebook face of the studio: ipywidgets over the same core as the web UI and the CLI.

``Studio`` is one studio in a notebook: the config form generated from FlagEmbedding's schema,
the live command and pre-flight checks, the data workbench, Start/Stop with a live loss chart,
the runs on disk and the before/after evaluation. Every button calls a method that a cell can
call too (``studio.start()``, ``studio.check_data()``, ``studio.evaluate()``), and each method
calls the core and returns data, so a notebook that runs top to bottom and a person clicking
do the same thing. ``launch_web`` serves the Gradio studio inline in the notebook instead.

Importing this package is cheap: ipywidgets, plotly and gradio load when a studio is built.
"""

from __future__ import annotations

from studio.notebook.studio import Studio
from studio.notebook.web import launch_web

__all__ = ["Studio", "launch_web"]
