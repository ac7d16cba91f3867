"""The web UI's tabs, in page order: one module each.

Every tab module has the same two functions. ``layout(ctx, reg, lang)`` creates its components
inside the open ``gr.Tab`` and registers them by id; ``bind(ctx, reg, demo)`` wires their
events to :mod:`studio.app.actions` once every tab is laid out, so a tab can read or write another's
components by id (a form field redraws the Command tab's script). The imports are plain: a tab
that fails to import fails the page loudly.
"""

from studio.webui.tabs import command, data, evaluate, launch, model, runs, train, training

TABS = (model, training, launch, data, command, train, runs, evaluate)

__all__ = ["TABS"]
