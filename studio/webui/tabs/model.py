"""Model & data: the fine-tune module, the model, the data and the instruction formats."""

from __future__ import annotations

from studio.core import form
from studio.facts import modules
from studio.facts.i18n import t
from studio.webui import form_state
from studio.webui.registry import FORM, make_input

ID, TITLE = "model", "tab.model"


def add_field(reg, f, cfg, values: dict, lang: str) -> None:
    """One field's input; built for every module's fields, shown for the config's module."""
    shown = f.name in values
    f = cfg.schema[f.name] if shown else f
    value = values[f.name] if shown else form.to_widget(f, None)
    reg.add(FORM + f.name, make_input(f, value, lang, visible=shown))


def layout(ctx, reg, lang: str) -> None:
    import gradio as gr

    cfg = ctx.config
    menu = gr.Dropdown(
        [(f"{m.title} · {name}", name) for name, m in modules.MODULES.items()],
        value=cfg.module,
        label=t("module", lang),
        info="FlagEmbedding.finetune.<module>: each has its own arguments.",
        elem_id="studio-module",
    )
    reg.add("model.module", menu, text="module")
    reg.add("model.message", gr.Markdown(elem_id="studio-module-msg"))
    gr.Markdown(t("bundled_hint", lang))
    values = form.config_to_values(cfg, cfg.schema)
    for f in form.all_modules_layout()[0]:
        add_field(reg, f, cfg, values, lang)


def bind(ctx, reg, demo) -> None:
    form_state.bind_fields(ctx, reg, [f.name for f in form.all_modules_layout()[0]])
    switched = reg["model.module"].input(
        lambda data: form_state.switch_module(reg, data),
        {reg["model.module"], *reg.form_inputs()},
        [*reg.fill_targets(), reg["model.message"]],
    )
    form_state.bind_checks(ctx, reg, switched)
