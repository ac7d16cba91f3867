"""The id registry of the web UI: every component by a stable id ("form.learning_rate",
"launch.ds_stage", "studio.eval_data", "train.status"), so tabs lay out components in one
module and bind them in another place by name, and handlers read and write by name (Gradio's
dict inputs and outputs), never by position in a list of ~160 inputs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from studio.core import form
from studio.facts import labels
from studio.facts.i18n import t
from studio.facts.schema import Field

FORM, LAUNCH, STUDIO, GROUP = "form.", "launch.", "studio.", "training.group."
LOADED = "session.loaded"  # gr.State: the keys of the last loaded config and its module


@dataclass
class Registry:
    components: dict[str, Any] = field(default_factory=dict)  # id -> component
    texts: list[tuple[Any, str]] = field(default_factory=list)  # (component, i18n key)

    def add(self, cid: str, component, text: str | None = None):
        """Register `component` as `cid` (and, with `text`, relabel it on a language switch)."""
        if cid in self.components:
            raise ValueError(f"two components share the id {cid!r}")
        self.components[cid] = component
        if text:
            self.texts.append((component, text))
        return component

    def text(self, component, key: str):
        """A component without an id whose label (or value, for buttons) is translated."""
        self.texts.append((component, key))
        return component

    def __getitem__(self, cid: str):
        return self.components[cid]

    def __contains__(self, cid: str) -> bool:
        return cid in self.components

    def pick(self, received: dict, /, **names: str) -> dict[str, Any]:
        """Values of a handler's dict input as keyword arguments: ``pick(data, ks="eval.k")``
        is ``{"ks": data[reg["eval.k"]]}``."""
        return {kw: received[self.components[cid]] for kw, cid in names.items()}

    def values(self, data: dict, prefix: str) -> dict[str, Any]:
        """The values a handler received of one section's inputs, by the rest of their ids:
        sections name their inputs after the action's parameters (``mine.range_from``), so
        ``actions.mine(..., **reg.values(data, "mine."))`` passes each by name."""
        return {k: data[c] for k, c in self.section(prefix).items() if c in data}

    def many(self, *cids: str) -> list:
        return [self.components[c] for c in cids]

    def section(self, prefix: str) -> dict[str, Any]:
        """The components whose id starts with `prefix`, by the rest of their id, in order."""
        n = len(prefix)
        return {cid[n:]: c for cid, c in self.components.items() if cid.startswith(prefix)}

    @property
    def form(self) -> dict[str, Any]:
        return self.section(FORM)

    @property
    def launch(self) -> dict[str, Any]:
        return self.section(LAUNCH)

    @property
    def studio(self) -> dict[str, Any]:
        return self.section(STUDIO)

    @property
    def groups(self) -> dict[str, Any]:
        """The Training tab's accordions by group name."""
        return self.section(GROUP)

    def form_inputs(self) -> set:
        """Everything a handler needs to read the form: the fields, the launch settings, the
        `studio:` section and the session's loaded-config state (a set: Gradio passes one
        dict keyed by component)."""
        return {*self.form.values(), *self.launch.values(), *self.studio.values(), self[LOADED]}

    def read(self, data: dict) -> dict[str, dict[str, Any]]:
        """A handler's dict input as {"form": {flag: value}, "launch": ..., "studio": ...}."""
        return {
            "form": {k: data[c] for k, c in self.form.items()},
            "launch": {k: data[c] for k, c in self.launch.items()},
            "studio": {k: data[c] for k, c in self.studio.items()},
        }

    def fill_targets(self) -> list:
        """What showing a config updates: every input, the session state, the module menu,
        and the accordions (hidden when the module has none of their fields)."""
        return [
            *self.form.values(),
            *self.launch.values(),
            *self.studio.values(),
            self[LOADED],
            self["model.module"],
            *self.groups.values(),
        ]

    def ids(self, components: Iterable) -> list[str]:
        """The ids of components (for messages and tests)."""
        by_obj = {id(c): cid for cid, c in self.components.items()}
        return [by_obj.get(id(c), "?") for c in components]


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


def make_studio_input(key: str, value: Any):
    """The Gradio input for one key of the config's `studio:` section."""
    import gradio as gr

    from studio.core.config import STUDIO_KEYS

    common = {"label": form.studio_label(key), "elem_id": f"studio-key-{key}"}
    if STUDIO_KEYS[key] is bool:
        return gr.Checkbox(value=bool(value), **common)
    return gr.Textbox(value="" if value is None else str(value), **common)


__all__ = ["Registry", "field_info", "field_label", "make_input", "make_studio_input", "t"]
