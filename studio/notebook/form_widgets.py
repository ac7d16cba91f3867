"""The config form as ipywidgets: one widget per schema field, laid out as the web UI lays it out.

Which flag goes on which page, its widget kind and how a widget value becomes a config value
are decided once in :mod:`studio.core.form` (for the web UI too); this module only picks the
ipywidget for each kind (Checkbox, Dropdown, IntText, FloatText, Text, Textarea) and keeps
per-instance state: the widgets, the keys of the last loaded config (kept even at their
default, as the web UI does) and who to tell when a value changes.

The fine-tune module decides which fields exist: switching it (the module menu, or
:meth:`FormWidgets.switch_module`) goes through :func:`studio.core.module_switch.switch_module`, as the
web UI does, and rebuilds the field widgets inside the same page boxes.
"""

from __future__ import annotations

import contextlib
import html
from collections.abc import Callable, Iterator
from typing import Any

from studio.core import form
from studio.core.config import STUDIO_KEYS, StudioConfig
from studio.facts import labels
from studio.facts.problems import Problem, closest_name
from studio.facts.schema import Field, Schema, load_schema

_WIDTH = "98%"
_LABEL_WIDTH = "300px"
_INVALID = "1px solid #e5484d"
_NOT_SET = "(not set)"


def _text(key: str, lang: str) -> str:
    from studio.facts.i18n import t

    return t(key, lang)


def field_widget(f: Field, value: Any, lang: str = "en"):
    """The typed ipywidget for one schema field, holding `value` as studio.form shows it."""
    import ipywidgets as w

    from studio.facts.labels import field_label

    kind = form.widget_kind(f)
    common = {
        "description": field_label(f.name, lang),
        "tooltip": f.help.strip() or f.name,
        "style": {"description_width": _LABEL_WIDTH},
        "layout": w.Layout(width=_WIDTH),
    }
    if kind == "checkbox":
        return w.Checkbox(value=bool(value), indent=True, **common)
    if kind == "dropdown":
        options = [(c, c) for c in f.choices or ()]
        if f.optional or value is None:
            options.insert(0, (_NOT_SET, None))
        if value is not None and value not in f.choices:
            options.append((str(value), value))
        return w.Dropdown(options=options, value=value, **common)
    if kind == "integer":
        return w.IntText(value=int(value), **common)
    if kind == "number":
        return w.FloatText(value=float(value), **common)
    if kind == "lines":
        common["tooltip"] += " (one per line)"
        return w.Textarea(value=value, rows=2, **common)
    return w.Text(value=value, **common)


def _launch_widget(key: str, value: Any, lang: str):
    import ipywidgets as w

    common = {
        "description": _text(key, lang),
        "style": {"description_width": _LABEL_WIDTH},
        "layout": w.Layout(width=_WIDTH),
    }
    if key in form.LAUNCH_CHOICES:
        choices = list(form.LAUNCH_CHOICES[key])
        return w.Dropdown(
            options=choices, value=value if value in choices else choices[0], **common
        )
    if key == "master_port":
        common["description"] = "Master port (0: a free port)"
        return w.IntText(value=int(value or 0), **common)
    if isinstance(value, bool):
        return w.Checkbox(value=value, indent=True, **common)
    if isinstance(value, int):
        return w.IntText(value=value, **common)
    return w.Text(value=str(value or ""), **common)


def _studio_widget(key: str, value: Any):
    import ipywidgets as w

    common = {
        "description": form.studio_label(key),
        "style": {"description_width": _LABEL_WIDTH},
        "layout": w.Layout(width=_WIDTH),
    }
    if STUDIO_KEYS[key] is bool:
        return w.Checkbox(value=bool(value), indent=True, **common)
    return w.Text(value=str(value or ""), **common)


class FormWidgets:
    """Every field of a config as a widget; reads back to a StudioConfig through studio.form."""

    def __init__(self, config: StudioConfig, lang: str = "en", schema: Schema | None = None):
        import ipywidgets as w

        from studio.facts.modules import MODULES

        self.lang = lang
        self.launch: dict[str, Any] = {}  # studio.form.LAUNCH_KEYS -> widget
        self.studio: dict[str, Any] = {}  # the config's own `studio:` section -> widget
        self._listeners: list[Callable[[str], None]] = []
        self._held = 0
        self._pages = None
        self.last_switch = None  # the ModuleSwitch of the last module change
        self.module = w.Dropdown(
            options=[(f"{m.title} · {name}", name) for name, m in MODULES.items()],
            value=config.module,
            description=f"{_text('module', lang)} · module",
            style={"description_width": _LABEL_WIDTH},
            layout=w.Layout(width=_WIDTH),
        )
        self.module_message = w.HTML()
        self._build_fields(config, schema or load_schema(config.module))
        launch = form.config_to_launch(config)
        for key in form.LAUNCH_KEYS:
            self.launch[key] = _launch_widget(key, launch[key], lang)
        for key in STUDIO_KEYS:
            self.studio[key] = _studio_widget(key, config.studio.get(key))
        for key, widget in {**self.launch, **self.studio}.items():
            widget.observe(self._other_handler(key), names="value")
        self.module.observe(self._module_handler, names="value")

    def _build_fields(self, config: StudioConfig, schema: Schema) -> None:
        """The field widgets of the config's module, filled from it (page boxes refreshed)."""
        self.schema = schema
        self.fields: dict[str, Any] = {}  # flag name -> widget, in page order
        self.errors: dict[str, str] = {}  # flag name -> why its widget value cannot be used
        self.explicit: tuple[str, ...] = tuple(config.args)
        values = form.config_to_values(config, schema)
        for f in form.model_data_fields(schema):
            self.fields[f.name] = field_widget(f, values[f.name], self.lang)
        basic, groups = form.training_fields(schema)
        self._basic = [f.name for f in basic]
        self._groups = {g: [f.name for f in fs] for g, fs in groups.items()}
        for f in basic + [f for fs in groups.values() for f in fs]:
            self.fields[f.name] = field_widget(f, values[f.name], self.lang)
        for name, widget in self.fields.items():
            widget.observe(self._field_handler(name), names="value")
        if self._pages is not None:
            model, training = self._field_pages()
            self._pages["model"].children = model.children
            self._pages["training"].children = training.children

    # -- the module
    def switch_module(self, module: str):
        """Show another fine-tune module's form, keeping the values that still apply.

        Returns the :class:`studio.core.module_switch.ModuleSwitch` (kept and dropped flags); its
        message is shown under the module menu.
        """
        from studio.core.module_switch import switch_module

        current, _ = self.read()
        result = switch_module(current, module)
        with self.hold():
            self._build_fields(result.config, load_schema(result.config.module))
            self._set_module_menu(result.config.module)
            self.last_switch = result
            self.module_message.value = html.escape(result.message())
        return result

    def _module_handler(self, change) -> None:
        if not self._held and change["new"] != self.schema.module:
            self.switch_module(change["new"])

    def _set_module_menu(self, module: str) -> None:
        with self.hold():
            self.module.value = module

    # -- reading
    def values(self) -> dict[str, Any]:
        return {name: widget.value for name, widget in self.fields.items()}

    def launch_values(self) -> dict[str, Any]:
        return {key: widget.value for key, widget in self.launch.items()}

    def studio_values(self) -> dict[str, Any]:
        """The `studio:` section the widgets hold (only what is set)."""
        return form.studio_from_widgets({k: w.value for k, w in self.studio.items()})[0]

    def read(self) -> tuple[StudioConfig, list[Problem]]:
        """The config the widgets describe, and a problem per widget value that is unusable."""
        studio, problems = form.studio_from_widgets({k: w.value for k, w in self.studio.items()})
        cfg, more = form.values_to_config(
            self.values(),
            self.launch_values(),
            studio,
            explicit=self.explicit,
            schema=self.schema,
        )
        return cfg, more + problems

    # -- writing
    def fill(self, config: StudioConfig) -> None:
        """Show a config: every widget set, one change event for the lot."""
        if config.module != self.schema.module:
            with self.hold():
                self._build_fields(config, load_schema(config.module))
                self._set_module_menu(config.module)
                self.module_message.value = ""
        values = form.config_to_values(config, self.schema)
        launch = form.config_to_launch(config)
        with self.hold():
            for name, widget in self.fields.items():
                _assign(widget, values[name])
                self._mark(name)
            for key, widget in self.launch.items():
                _assign(widget, 0 if key == "master_port" and not launch[key] else launch[key])
            for key, value in form.studio_to_widgets(config).items():
                _assign(self.studio[key], value)
            self.explicit = tuple(config.args)

    def set(self, **values: Any) -> None:
        """Set fields by flag name (config values: lists for lists), launch keys or studio keys.

        A flag set here counts as chosen: it stays in the config even at its default.
        """
        unknown = [k for k in values if not self._known(k)]
        if unknown:
            names = list(self.fields) + list(self.launch) + list(self.studio)
            hints = []
            for key in unknown:
                guess = closest_name(key, names)
                if key in form.PRECISION_FLAGS:
                    hints.append(f"`{key}`: set precision='{key}' (a launch setting)")
                else:
                    hints.append(f"`{key}`" + (f": did you mean `{guess}`?" if guess else ""))
            raise KeyError("not a field of the form: " + "; ".join(hints))
        with self.hold():
            for key, value in values.items():
                if key in self.fields:
                    _assign(self.fields[key], form.to_widget(self.schema[key], value))
                    self._mark(key)
                    if key not in self.explicit:
                        self.explicit += (key,)
                elif key in self.launch:
                    _assign(self.launch[key], 0 if key == "master_port" and not value else value)
                else:
                    shown = form.studio_to_widgets(StudioConfig(studio={key: value}))
                    _assign(self.studio[key], shown[key])

    def _known(self, key: str) -> bool:
        return key in self.fields or key in self.launch or key in self.studio

    # -- change events
    def on_change(self, callback: Callable[[str], None]) -> None:
        """Call `callback(name)` after a value changes (once per `hold()` block)."""
        self._listeners.append(callback)

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Change many widgets with one change event at the end."""
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1
            if not self._held:
                self._notify("*")

    def _field_handler(self, name: str):
        def handler(_change):
            if self._held:
                return
            self._mark(name)
            self._notify(name)

        return handler

    def _other_handler(self, key: str):
        def handler(_change):
            if not self._held:
                self._notify(key)

        return handler

    def _notify(self, name: str) -> None:
        for callback in list(self._listeners):
            callback(name)

    def _mark(self, name: str) -> None:
        """Outline a field whose value cannot be used and say why in its tooltip."""
        widget = self.fields[name]
        f = self.schema[name]
        error = form.field_error(name, widget.value, self.schema)
        help_text = f.help.strip() or f.name
        if error:
            self.errors[name] = error
            widget.layout.border = _INVALID
            widget.tooltip = f"⚠ {error}"
        elif name in self.errors:
            del self.errors[name]
            widget.layout.border = ""
            widget.tooltip = help_text

    # -- layout
    def pages(self) -> dict[str, Any]:
        """{'model': box, 'training': box, 'launch': box}: the web UI's first three tabs."""
        import ipywidgets as w

        from studio.facts.hardware import detect

        if self._pages is not None:
            return self._pages
        lang = self.lang
        model, training = self._field_pages()
        launch = w.VBox(
            [
                *self.launch.values(),
                w.HTML("<b>Studio</b>"),
                *self.studio.values(),
                w.HTML(f"<b>{_text('hardware', lang)}</b>: {detect().describe()}"),
            ]
        )
        self._pages = {"model": model, "training": training, "launch": launch}
        return self._pages

    def _field_pages(self):
        """(Model & data box, Training box) for the current module's field widgets."""
        import ipywidgets as w

        lang = self.lang
        model = w.VBox(
            [self.module, self.module_message, w.HTML(_text("bundled_hint", lang))]
            + [self.fields[f.name] for f in form.model_data_fields(self.schema)]
        )
        groups = w.Accordion(
            children=[w.VBox([self.fields[n] for n in names]) for names in self._groups.values()],
            titles=tuple(labels.group_label(g, lang) for g in self._groups),
        )
        groups.selected_index = None
        training = w.VBox(
            [
                w.HTML(f"<b>{labels.group_label('Basic', lang)}</b>"),
                *[self.fields[n] for n in self._basic],
                groups,
            ]
        )
        return model, training

    def group_titles(self) -> list[str]:
        return list(self._groups)


def _assign(widget, value: Any) -> None:
    """Set a widget's value; a Dropdown learns an option it lacks instead of refusing it."""
    options = getattr(widget, "options", None)
    if options is not None:
        known = [o[1] if isinstance(o, tuple) else o for o in options]
        if value not in known:
            widget.options = [*options, (_NOT_SET if value is None else str(value), value)]
    widget.value = value
