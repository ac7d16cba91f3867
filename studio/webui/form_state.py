"""The form behind the Model, Training and Launch tabs: reading it into a config, showing a
config in it, and what every change updates (the Command tab's script, the Train tab's
pre-flight and Start button).

Handlers here take Gradio's dict input (component -> value, from ``reg.form_inputs()``) and
return dicts (component -> value or update), so nothing depends on the order of ~160 inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

from studio.app import actions, views
from studio.core import form
from studio.core.config import StudioConfig
from studio.facts import modules
from studio.facts.problems import Problem
from studio.webui.registry import LOADED, Registry, field_info

# What a form change redraws (ids of components laid out by the Command and Train tabs).
CHECK_OUTPUTS = ("command.script", "train.preflight", "train.start")


def loaded_state(cfg: StudioConfig) -> dict:
    """What a session remembers of the config it loaded beyond the widgets' values: the keys
    it set (kept even at their default) and its fine-tune module (whose fields the form shows)."""
    return {"args": list(cfg.args), "module": cfg.module}


def session_schema(loaded):
    """The schema of the module the session's form shows."""
    from studio.facts.schema import load_schema

    return load_schema((loaded or {}).get("module"))


def read_config(reg: Registry, data: dict) -> tuple[StudioConfig, list[Problem]]:
    """The config the page's form describes, and a problem per value that cannot be used."""
    loaded = data[reg[LOADED]] or {}
    values = reg.read(data)
    schema = session_schema(loaded)
    shown = form.module_field_names(schema.module)
    studio, problems = form.studio_from_widgets(values["studio"])
    cfg, more = form.values_to_config(
        {k: v for k, v in values["form"].items() if k in shown},
        values["launch"],
        studio=studio,
        explicit=tuple(loaded.get("args") or ()),
        schema=schema,
    )
    return cfg, more + problems


def valid_config(reg: Registry, data: dict) -> StudioConfig:
    """The form's config for an action that needs a usable one (gr.Error naming the fields)."""
    with shown_errors():
        return actions.require_valid(*read_config(reg, data))


@contextmanager
def shown_errors():
    """Turn what an action raises for bad input into a message on the page (gr.Error), with
    the same text the notebook shows (views.failure_text)."""
    import gradio as gr

    try:
        yield
    except gr.Error:
        raise
    except (ValueError, OSError, LookupError, RuntimeError) as exc:
        raise gr.Error(views.failure_text(exc)) from None


def check(ctx, reg: Registry, data: dict) -> dict:
    """Command, pre-flight and Start's state for the form as it is."""
    import gradio as gr

    cfg, problems = read_config(reg, data)
    result = actions.check_form(ctx.ws, cfg, problems)
    script, preflight, start = reg.many(*CHECK_OUTPUTS)
    return {
        script: result.script,
        preflight: views.problems_text(result.problems),
        start: gr.update(interactive=result.startable),
    }


def check_outputs(reg: Registry) -> list:
    return reg.many(*CHECK_OUTPUTS)


def field_changed(ctx, reg: Registry, name: str) -> Callable[[dict], dict]:
    """A field was edited: mark it when its value cannot be used, then redraw the checks."""
    import gradio as gr

    def on_input(data: dict) -> dict:
        out = check(ctx, reg, data)
        schema = session_schema(data[reg[LOADED]])
        if name in schema:
            error = form.field_error(name, data[reg.form[name]], schema)
            out[reg.form[name]] = gr.update(
                info=field_info(schema[name], error),
                elem_classes=["studio-field"] + (["studio-invalid"] if error else []),
            )
        return out

    on_input.__name__ = f"field_changed_{name}"
    return on_input


def fill(reg: Registry, cfg: StudioConfig, previous: dict | None) -> dict:
    """Updates that show `cfg`: the module's fields shown and set, the others hidden, the
    launch and `studio:` settings, and an accordion only where the module has fields in it.

    Only fields the previous module (`previous`: the session state) showed are hidden: Gradio
    6 does not render a hidden input, and one told to hide again while hidden stayed hidden
    when later told to show."""
    import gradio as gr

    schema = cfg.schema
    was_shown = form.module_field_names(session_schema(previous).module)
    values = form.config_to_values(cfg, schema)
    out: dict[Any, Any] = {}
    for name, comp in reg.form.items():
        if name not in values:
            if name in was_shown:
                out[comp] = gr.update(visible=False)
            continue
        f = schema[name]
        extra = {"choices": list(f.choices)} if form.widget_kind(f) == "dropdown" else {}
        out[comp] = gr.update(value=values[name], visible=True, info=field_info(f), **extra)
    launch = form.config_to_launch(cfg)
    out.update({comp: launch[key] for key, comp in reg.launch.items()})
    studio = form.studio_to_widgets(cfg)
    out.update({comp: studio[key] for key, comp in reg.studio.items()})
    out[reg[LOADED]] = loaded_state(cfg)
    out[reg["model.module"]] = cfg.module
    fields_by_group = form.all_modules_layout()[2]
    for group, box in reg.groups.items():
        out[box] = gr.update(visible=any(f.name in values for f in fields_by_group[group]))
    return out


def switch_module(reg: Registry, data: dict) -> dict:
    """The module menu changed: keep the values that still apply, say what was dropped."""
    from studio.core.module_switch import switch_module as switch

    module = data[reg["model.module"]]
    loaded = data[reg[LOADED]] or {}
    if module == loaded.get("module", modules.DEFAULT_MODULE):
        return {}
    cfg, _ = read_config(reg, data)
    result = switch(cfg, module)
    return {**fill(reg, result.config, loaded), reg["model.message"]: result.message()}


# Every event that redraws the checks and the command runs in one queue, one at a time, in the
# order the browser sent them. Each carries the form as it was when it was sent; run side by
# side, an older event finishing last (a slower pre-flight) would leave the command showing a
# form without the newer change, for good.
SERIAL = {"concurrency_id": "form-checks", "concurrency_limit": 1}


def bind_checks(ctx, reg: Registry, event) -> None:
    """After an event that filled the form, redraw the checks."""
    event.then(lambda data: check(ctx, reg, data), reg.form_inputs(), check_outputs(reg), **SERIAL)


def bind_fields(ctx, reg: Registry, names) -> None:
    """Each field redraws the checks as it is typed in, and marks itself when its value cannot
    be used. "always_last": keystrokes typed while an update runs must not be dropped (Gradio's
    default for .input is "once"), or the command would show a stale value."""
    inputs = reg.form_inputs()
    for name in names:
        comp = reg.form[name]
        comp.input(
            field_changed(ctx, reg, name),
            inputs,
            [comp, *check_outputs(reg)],
            show_progress="hidden",
            trigger_mode="always_last",
            **SERIAL,
        )


def bind_settings(ctx, reg: Registry, components) -> None:
    """Launch and `studio:` settings redraw the checks as they change."""
    inputs = reg.form_inputs()
    for comp in components:
        comp.input(
            lambda data: check(ctx, reg, data),
            inputs,
            check_outputs(reg),
            show_progress="hidden",
            trigger_mode="always_last",
            **SERIAL,
        )
