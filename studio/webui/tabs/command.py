"""Command: the script the form runs, downloads, saving and loading a config, importing a
launch script, and the "Past one machine" section."""

from __future__ import annotations

import tempfile
from pathlib import Path

from studio import actions, command, views
from studio import config as config_mod
from studio.i18n import t
from studio.webui import cluster_panel, form_state
from studio.webui.registry import LOADED

ID, TITLE = "command", "tab.command"
DIAGNOSTIC_COLUMNS = ["level", "line", "field", "message", "fix"]


def layout(ctx, reg, lang: str) -> None:
    import gradio as gr

    add = reg.add
    add(
        "command.script",
        gr.Code(
            command.render_script(ctx.config),
            language="shell",
            label=t("command", lang),
            interactive=False,
            elem_id="studio-command",
            buttons=["copy", "download"],
        ),
        text="command",
    )
    with gr.Row():
        add(
            "command.download_script",
            gr.DownloadButton(t("download_script", lang)),
            "download_script",
        )
        add(
            "command.download_config",
            gr.DownloadButton(t("download_config", lang)),
            "download_config",
        )
    with gr.Row():
        add(
            "command.config_path",
            gr.Textbox(label=t("config_path", lang), elem_id="studio-config-path"),
            "config_path",
        )
        add("command.overwrite", gr.Checkbox(label=t("overwrite", lang)), "overwrite")
    with gr.Row():
        add("command.save", gr.Button(t("save_config", lang)), "save_config")
        add("command.load", gr.Button(t("load_config", lang)), "load_config")
    add(
        "command.upload_config",
        gr.File(label=t("upload_config", lang), type="filepath", file_types=[".yaml", ".yml"]),
        "upload_config",
    )
    add("command.message", gr.Markdown())
    with gr.Row():
        add(
            "command.script_path",
            gr.Textbox(label=t("script_path", lang), elem_id="studio-script-path"),
            "script_path",
        )
        add("command.script_base", gr.Textbox(label=t("script_base", lang)), "script_base")
    add(
        "command.upload_script",
        gr.File(label=t("upload_script", lang), type="filepath", file_types=[".sh", ".txt"]),
        "upload_script",
    )
    add(
        "command.import",
        gr.Button(t("import_script", lang), elem_id="studio-import"),
        "import_script",
    )
    add(
        "command.diagnostics",
        gr.Dataframe(
            headers=DIAGNOSTIC_COLUMNS,
            label=t("diagnostics", lang),
            wrap=True,
            elem_id="studio-diagnostics",
            interactive=False,
        ),
        "diagnostics",
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
        script.write_text(command.render_script(cfg), encoding="utf-8")
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
