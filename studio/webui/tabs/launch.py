"""Launch: precision, torchrun, DeepSpeed, the config's `studio:` settings, this machine's
hardware and the memory estimate."""

from __future__ import annotations

from studio import form
from studio.config import STUDIO_KEYS
from studio.hardware import detect
from studio.i18n import t
from studio.webui import form_state, memory_panel
from studio.webui.registry import LAUNCH, STUDIO, make_studio_input

ID, TITLE = "launch", "tab.launch"


def layout(ctx, reg, lang: str) -> None:
    import gradio as gr

    cfg = ctx.config
    launch = form.config_to_launch(cfg)

    def add(key, make, value, **options):
        """One launch setting: its component, labelled and registered as launch.<key>."""
        reg.add(LAUNCH + key, make(value=value, label=t(key, lang), **options), text=key)

    add(
        "precision",
        gr.Radio,
        launch["precision"],
        choices=list(form.PRECISIONS),
        elem_id="launch-precision",
    )
    with gr.Row():
        add("nproc_per_node", gr.Number, launch["nproc_per_node"], precision=0, minimum=1)
        add("nnodes", gr.Number, launch["nnodes"], precision=0, minimum=1)
        add("node_rank", gr.Number, launch["node_rank"], precision=0, minimum=0)
        add("master_addr", gr.Textbox, launch["master_addr"])
        add("master_port", gr.Number, launch["master_port"], precision=0)
    add(
        "ds_mode",
        gr.Radio,
        launch["ds_mode"],
        choices=list(form.DS_MODES),
        elem_id="launch-ds-mode",
    )
    with gr.Row():
        add(
            "ds_stage",
            gr.Dropdown,
            launch["ds_stage"],
            choices=[0, 1, 2, 3],
            elem_id="launch-ds-stage",
        )
        add("ds_offload_optimizer", gr.Checkbox, launch["ds_offload_optimizer"])
        add("ds_offload_param", gr.Checkbox, launch["ds_offload_param"])
        add("ds_precision", gr.Dropdown, launch["ds_precision"], choices=list(form.DS_PRECISIONS))
    add("ds_file", gr.Textbox, launch["ds_file"])
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
