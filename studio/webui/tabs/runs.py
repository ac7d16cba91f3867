"""Runs: every run on disk (several browsers, or a restarted studio, see the same), one run's
summary, chart, config and log, resume or stop it, and compare loss curves."""

from __future__ import annotations

from studio.app import actions, views
from studio.facts.i18n import t
from studio.webui import form_state
from studio.webui.registry import LOADED
from studio.webui.tabs.train import WATCHED, watching

ID, TITLE = "runs", "tab.runs"
COLUMNS = ("name", "status", "step", "last_loss", "started")


def layout(ctx, reg, lang: str) -> None:
    import gradio as gr

    add = reg.add
    add("runs.refresh", gr.Button(t("refresh", lang), elem_id="runs-refresh"), "refresh")
    add(
        "runs.table",
        gr.Dataframe(
            headers=["name", "status", "step", "last loss", "started"],
            interactive=False,
            elem_id="runs-table",
        ),
    )
    add("runs.pick", gr.Dropdown(choices=[], label=t("run", lang), elem_id="runs-pick"), "run")
    with gr.Row():
        add("runs.load_config", gr.Button(t("load_run_config", lang)), "load_run_config")
        add("runs.resume", gr.Button(t("resume", lang), elem_id="runs-resume"), "resume")
        add("runs.stop", gr.Button(t("stop", lang)), "stop")
    add("runs.summary", gr.Markdown(elem_id="runs-summary"))
    add("runs.plot", gr.Plot(elem_id="runs-plot"))
    with gr.Accordion("config.yaml", open=False):
        add("runs.config", gr.Code(language="yaml", interactive=False))
    add("runs.log", gr.Textbox(lines=10, max_lines=10, interactive=False, label="train.log"))
    add(
        "runs.compare",
        gr.CheckboxGroup(choices=[], label=t("compare", lang), elem_id="runs-compare"),
        "compare",
    )
    add("runs.compare_plot", gr.Plot(elem_id="runs-compare-plot"))


def bind(ctx, reg, demo) -> None:
    import gradio as gr

    ws = ctx.ws

    def picked(name):
        if not name:
            raise gr.Error("Pick a run first.")
        return name

    def table():
        rows = actions.runs_rows(ws)
        names = [r["name"] for r in rows]
        return {
            reg["runs.table"]: [[r[c] for c in COLUMNS] for r in rows],
            reg["runs.pick"]: gr.update(choices=names),
            reg["runs.compare"]: gr.update(choices=names),
        }

    def open_run(name):
        if not name:
            return dict.fromkeys(reg.many("runs.config", "runs.summary", "runs.log"), "") | {
                reg["runs.plot"]: None
            }
        with form_state.shown_errors():
            view = actions.open_run(ws, name, inside=True)
        return {
            reg["runs.config"]: view.config_text,
            reg["runs.plot"]: view.figure(),
            reg["runs.summary"]: view.summary(),
            reg["runs.log"]: view.log,
        }

    def load_run_config(data):
        with form_state.shown_errors():
            cfg = actions.run_config(ws, picked(data[reg["runs.pick"]]), inside=True)
        return form_state.fill(reg, cfg, data[reg[LOADED]])

    def resume(name):
        with form_state.shown_errors():
            run_dir = actions.resume(ws, picked(name), inside=True)
        return dict(zip(reg.many(*WATCHED), watching(run_dir), strict=True))

    def stop(name):
        with form_state.shown_errors():
            run_dir = actions.find_run(ws, picked(name), inside=True)
            return views.status_text(run_dir, actions.stop(ws, run_dir))

    def compare(names):
        with form_state.shown_errors():
            return actions.compare_runs(ws, names or [], inside=True)

    table_out = reg.many("runs.table", "runs.pick", "runs.compare")
    pick = reg["runs.pick"]
    reg["runs.refresh"].click(table, None, table_out)
    demo.load(table, None, table_out)
    pick.change(open_run, pick, reg.many("runs.config", "runs.plot", "runs.summary", "runs.log"))
    event = reg["runs.load_config"].click(load_run_config, {pick, reg[LOADED]}, reg.fill_targets())
    form_state.bind_checks(ctx, reg, event)
    reg["runs.resume"].click(resume, pick, reg.many(*WATCHED)).then(table, None, table_out)
    reg["runs.stop"].click(stop, pick, reg["runs.summary"]).then(table, None, table_out)
    reg["runs.compare"].change(compare, reg["runs.compare"], reg["runs.compare_plot"])
