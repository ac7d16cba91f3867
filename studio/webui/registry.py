"""The id registry of the web UI: every input by a stable id ("form.learning_rate",
"launch.ds_stage"), so loading a config, reading the form and switching language walk one
list instead of hand-written mappings that drift.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from studio import form, labels
from studio.i18n import t
from studio.schema import Field


@dataclass
class Registry:
    form: dict[str, Any] = field(default_factory=dict)  # flag name -> component
    launch: dict[str, Any] = field(default_factory=dict)  # launch key -> component
    texts: list[tuple[Any, str]] = field(default_factory=list)  # (component, i18n key)
    explicit: Any = None  # gr.State: the keys of the last loaded config, and its module
    module: Any = None  # the fine-tune module menu
    module_message: Any = None  # what a module switch kept and dropped
    groups: dict[str, Any] = field(default_factory=dict)  # group name -> accordion
    config_from: Any = None  # (values, explicit) -> (StudioConfig, problems), for other tabs

    def form_components(self) -> list:
        return list(self.form.values())

    def launch_components(self) -> list:
        return [self.launch[k] for k in form.LAUNCH_KEYS]

    def inputs(self) -> list:
        return self.form_components() + self.launch_components()

    def fill_targets(self) -> list:
        """What showing a config updates: every input, the session state, the module menu,
        and the accordions (hidden when the module has none of their fields)."""
        return [*self.inputs(), self.explicit, self.module, *self.groups.values()]

    def split(self, values: tuple | list) -> tuple[dict[str, Any], dict[str, Any]]:
        """Handler arguments back into (form values by flag, launch values by key)."""
        n = len(self.form)
        form_values = dict(zip(self.form.keys(), values[:n], strict=True))
        launch_values = dict(
            zip(form.LAUNCH_KEYS, values[n : n + len(form.LAUNCH_KEYS)], strict=True)
        )
        return form_values, launch_values

    def text(self, component, key: str):
        self.texts.append((component, key))
        return component


def field_label(f: Field, lang: str) -> str:
    return labels.field_label(f.name, lang)


def field_info(f: Field, error: str | None = None) -> str:
    help_text = f.help.strip()
    if len(help_text) > 240:
        help_text = help_text[:237] + "..."
    if form.widget_kind(f) == "lines":
        help_text += " (one per line)"
    return f"⚠ {error}" if error else help_text


def make_input(f: Field, value: Any, lang: str, visible: bool = True):
    """The typed Gradio input for one schema field."""
    import gradio as gr

    kind = form.widget_kind(f)
    common = {
        "label": field_label(f, lang),
        "info": field_info(f),
        "elem_id": f"form-{f.name}",
        "elem_classes": ["studio-field"],
        "visible": visible,
    }
    if kind == "checkbox":
        return gr.Checkbox(value=bool(value), **common)
    if kind == "dropdown":
        return gr.Dropdown(choices=list(f.choices or ()), value=value, **common)
    if kind == "integer":
        return gr.Number(value=value, precision=0, **common)
    if kind == "number":
        return gr.Number(value=value, **common)
    if kind == "lines":
        return gr.Textbox(value=value, lines=2, max_lines=8, **common)
    return gr.Textbox(value=value, **common)


__all__ = ["Registry", "field_info", "field_label", "make_input", "t"]
