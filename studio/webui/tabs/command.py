"""Command: the script the form runs, downloads, saving and loading a config, importing a
launch script, and the "Past one machine" section."""

from __future__ import annotations

import tempfile
from pathlib import Path

from studio.app import actions, views
from studio.core import config as config_mod
from studio.facts.i18n import t
from studio.webui import cluster_panel, form_state
from studio.webui.registry import LOADED

ID, TITLE = "command", "tab.command"
DIAGNOSTIC_COLUMNS = ["level", "line", "field", "message", "fix"]


def layout(ctx, reg, lang: str) -> None:
    import gradio as gr

    def add(cid, make, key, **options):
        """A component labelled in the reader's language, relabelled on a switch."""
        text = {"value": t(key, lang)} if make in (gr.Button, gr.DownloadButton) else {}
        label = {} if text else {"label": t(key, lang)}
        return reg.add(f"command.{cid}", make(**text, **label, **options), text=key)

    script = actions.command_script(ctx.ws, ctx.config)
    add(
        "script",
        gr.Code,
        "command",
        value=script,
        language="shell",
        interactive=False,
        elem_id="studio-command",
        buttons=["copy", "download"],
    )
    with gr.Row():
        add("download_script", gr.DownloadButton, "download_script")
        add("download_config", gr.DownloadButton, "download_config")
    with gr.Row():
        add("config_path", gr.Textbox, "config_path", elem_id="studio-config-path")
        add("overwrite", gr.Checkbox, "overwrite")
    with gr.Row():
        add("save", gr.Button, "save_config")
        add("load", gr.Button, "load_config")
    add("upload_config", gr.File, "upload_config", type="filepath", file_types=[".yaml", ".yml"])
    reg.add("command.message", gr.Markdown())
    with gr.Row():
        add("script_path", gr.Textbox, "script_path", elem_id="studio-script-path")
        add("script_base", gr.Textbox, "script_base")
    add("upload_script", gr.File, "upload_script", type="filepath", file_types=[".sh", ".txt"])
    add("import", gr.Button, "import_script", elem_id="studio-import")
    add(
        "diagnostics",
        gr.Dataframe,
        "diagnostics",
        headers=DIAGNOSTIC_COLUMNS,
        wrap=True,
        elem_id="studio-diagnostics",
        interactive=False,
    )
    with gr.Accordion(t("cluster", lang), open=False, elem_id="studio-cluster"):
        cluster_panel.layout(reg, lang)


def bind(ctx, reg, demo) -> None:
    ws = ctx.ws

    def load_config(data):
        import gradio as gr

        source = data[reg["command.upload_config"]] or data[reg["command.config_path"]]
        if not source:
            raise gr.Error("Give a config path or upload a file.")
        with form_state.shown_errors():
            cfg = actions.load_config(ws, source)
        return {
            **form_state.fill(reg, cfg, data[reg[LOADED]]),
            reg["command.message"]: f"Loaded {views.escape(Path(source).name)}.",
        }

    def save_config(data):
        cfg = form_state.valid_config(reg, data)
        with form_state.shown_errors():
            target = actions.save_config(
                ws, cfg, data[reg["command.config_path"]], data[reg["command.overwrite"]]
            )
        return f"Saved {views.code(target)}."

    def download(data):
        cfg, _ = form_state.read_config(reg, data)
        folder = Path(tempfile.mkdtemp(prefix="bge-studio-"))
        script = folder / "command.sh"
        script.write_text(actions.command_script(ws, cfg), encoding="utf-8")
        cfg_file = folder / "config.yaml"
        cfg_file.write_text(config_mod.dump(cfg), encoding="utf-8")
        return {
            reg["command.download_script"]: str(script),
            reg["command.download_config"]: str(cfg_file),
        }

    def import_script(data):
        import gradio as gr

        typed = data[reg["command.script_path"]]
        source = data[reg["command.upload_script"]] or typed
        if not source:
            raise gr.Error("Give a script path or upload a script.")
        base = data[reg["command.script_base"]] or (Path(typed).parent if typed else ws.base_dir)
        with form_state.shown_errors():
            result = actions.import_script(ws, source, base)
        return {
            **form_state.fill(reg, result.config, data[reg[LOADED]]),
            reg["command.diagnostics"]: views.problem_rows(result.problems, DIAGNOSTIC_COLUMNS),
        }

    fill_out = reg.fill_targets()
    loaded = reg[LOADED]
    event = reg["command.load"].click(
        load_config,
        {*reg.many("command.config_path", "command.upload_config"), loaded},
        [*fill_out, reg["command.message"]],
    )
    form_state.bind_checks(ctx, reg, event)
    reg["command.save"].click(
        save_config,
        {*reg.many("command.config_path", "command.overwrite"), *reg.form_inputs()},
        reg["command.message"],
    )
    downloads = reg.many("command.download_script", "command.download_config")
    for button in downloads:
        button.click(download, reg.form_inputs(), downloads)
    event = reg["command.import"].click(
        import_script,
        {*reg.many("command.script_path", "command.upload_script", "command.script_base"), loaded},
        [*fill_out, reg["command.diagnostics"]],
    )
    form_state.bind_checks(ctx, reg, event)
    cluster_panel.bind(ctx, reg)
