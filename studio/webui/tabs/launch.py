"""Launch: precision, torchrun, DeepSpeed, the config's `studio:` settings, this machine's
hardware and the memory estimate."""

from __future__ import annotations

from studio.core import form
from studio.core.config import STUDIO_KEYS
from studio.facts.hardware import detect
from studio.facts.i18n import t
from studio.webui import form_state, memory_panel
from studio.webui.registry import LAUNCH, STUDIO, make_studio_input

ID, TITLE = "launch", "tab.launch"


RADIOS = ("precision", "ds_mode")  # short lists shown whole; the others drop down
MINIMUM = {"nproc_per_node": 1, "nnodes": 1, "node_rank": 0}


def launch_input(key: str, value, lang: str):
    """The Gradio input of one launch setting (studio.form decides which are lists)."""
    import gradio as gr

    common = {"value": value, "label": t(key, lang), "elem_id": f"launch-{key.replace('_', '-')}"}
    if key in form.LAUNCH_CHOICES:
        kind = gr.Radio if key in RADIOS else gr.Dropdown
        return kind(choices=list(form.LAUNCH_CHOICES[key]), **common)
    if isinstance(value, bool):
        return gr.Checkbox(**common)
    if key in MINIMUM or key == "master_port":
        return gr.Number(precision=0, minimum=MINIMUM.get(key), **common)
    return gr.Textbox(**common)


def layout(ctx, reg, lang: str) -> None:
    import gradio as gr

    cfg = ctx.config
    launch = form.config_to_launch(cfg)
    for row in form.LAUNCH_ROWS:
        with gr.Row():
            for key in row:
                reg.add(LAUNCH + key, launch_input(key, launch[key], lang), text=key)
    with gr.Accordion(t("studio_section", lang), open=False, elem_id="studio-section"):
        studio = form.studio_to_widgets(cfg)
        for key in STUDIO_KEYS:
            reg.add(STUDIO + key, make_studio_input(key, studio[key]))
    reg.text(gr.Markdown(f"### {t('hardware', lang)}"), "hardware")
    gr.Markdown(detect().describe(), elem_id="studio-hardware")
    memory_panel.layout(reg, lang, "launch-memory")


def bind(ctx, reg, demo) -> None:
    form_state.bind_settings(ctx, reg, [*reg.launch.values(), *reg.studio.values()])
    memory_panel.bind(ctx, reg, "launch-memory")
