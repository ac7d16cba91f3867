"""Training: the basic settings first, then every other group of the module folded."""

from __future__ import annotations

from studio.core import form
from studio.facts import labels
from studio.webui import form_state
from studio.webui.registry import GROUP
from studio.webui.tabs.model import add_field

ID, TITLE = "training", "tab.training"


def layout(ctx, reg, lang: str) -> None:
    import gradio as gr

    cfg = ctx.config
    values = form.config_to_values(cfg, cfg.schema)
    _, basic, groups = form.all_modules_layout()
    with gr.Group():
        for f in basic:
            add_field(reg, f, cfg, values, lang)
    for group, fields in groups.items():
        shown = any(f.name in values for f in fields)
        with gr.Accordion(labels.group_label(group, lang), open=False, visible=shown) as box:
            for f in fields:
                add_field(reg, f, cfg, values, lang)
        reg.add(GROUP + group, box)


def bind(ctx, reg, demo) -> None:
    _, basic, groups = form.all_modules_layout()
    names = [f.name for f in basic] + [f.name for fs in groups.values() for f in fs]
    form_state.bind_fields(ctx, reg, names)
