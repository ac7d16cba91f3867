"""Train: pre-flight, Start/Stop, the watched run's status, progress, live loss chart and log.

The watched run is per browser: a ``gr.State`` holding its RunWatcher and its name in the
browser's storage, so a page reload (or a restarted studio) re-attaches to it.
"""

from __future__ import annotations

from studio.app import actions, views
from studio.facts.i18n import t
from studio.facts.runfolder import RunFolder
from studio.training.runlog import tail_lines
from studio.webui import form_state, memory_panel

ID, TITLE = "train", "tab.train"
WATCHED = ("session.watcher", "session.stored_run", "train.status")


def progress_html(series, status: dict | None = None) -> str:
    """The bar, and under it the progress line the notebook shows too (views.progress_text)."""
    from studio.training.charts import progress

    info = progress(series)
    line = views.inline_html(views.progress_text(info, status))
    if views.phase_before_first_step(info, status):
        line = f"<span id='studio-phase'>{line}</span>"
    return (
        f"<div id='studio-progress'><div class='bar'><div class='fill' "
        f"style='width:{100 * info['fraction']:.1f}%'></div></div>"
        f"<div>{line}</div></div>"
    )


def watching(run_dir) -> tuple:
    """What the page holds for a run it now watches: watcher, stored name, status text."""
    from studio.training import runs
    from studio.training.watch import RunWatcher

    return RunWatcher(run_dir), run_dir.name, views.status_text(run_dir, runs.refresh(run_dir))


def layout(ctx, reg, lang: str) -> None:
    import gradio as gr

    add = reg.add
    add("train.preflight", gr.Markdown(elem_id="studio-preflight"))
    with gr.Row():
        add(
            "train.start",
            gr.Button(t("start", lang), variant="primary", elem_id="studio-start"),
            "start",
        )
        add("train.stop", gr.Button(t("stop", lang), variant="stop", elem_id="studio-stop"), "stop")
        add(
            "train.clear_locks",
            gr.Button(t("clear_locks", lang), elem_id="studio-clear-locks"),
            "clear_locks",
        )
    add("train.status", gr.Markdown(elem_id="studio-status"))
    with gr.Accordion(t("memory", lang), open=False):
        memory_panel.layout(reg, lang, "train-memory")
    add("train.progress", gr.HTML(elem_id="studio-progress-box"))
    add("train.plot", gr.Plot(elem_id="studio-train-plot"))
    add(
        "train.log",
        gr.Textbox(
            label=t("log", lang), lines=12, max_lines=12, interactive=False, elem_id="studio-log"
        ),
        "log",
    )


def bind(ctx, reg, demo) -> None:
    import gradio as gr

    ws = ctx.ws
    watcher_state = reg["session.watcher"]

    def start(data):
        cfg = form_state.valid_config(reg, data)
        with form_state.shown_errors():
            run_dir = actions.start(ws, cfg)
        return dict(zip(reg.many(*WATCHED), watching(run_dir), strict=True))

    def clear_locks(data):
        removed = actions.clear_stale_locks()
        note = (
            "Removed: " + ", ".join(views.code(p) for p in removed)
            if removed
            else "No stale build lock found."
        )
        out = form_state.check(ctx, reg, data)
        preflight = reg["train.preflight"]
        out[preflight] = f"{note}\n\n{out[preflight]}"
        return out

    def stop(watcher):
        if watcher is None:
            raise gr.Error("No run is being watched.")
        return views.status_text(watcher.run_dir, actions.stop(ws, watcher.run_dir))

    def attach(stored):
        """On page load: re-attach to the run this browser watched, else a running one."""
        run_dir = actions.run_to_watch(ws, stored)
        if run_dir is None:
            return {watcher_state: None, reg["train.status"]: t("no_run", ctx.lang)}
        watcher, _, text = watching(run_dir)
        return {watcher_state: watcher, reg["train.status"]: text}

    def tick(watcher):
        """Once a second: fold in new metrics lines; redraw the chart only when it changed."""
        from studio.training import runs
        from studio.training.charts import training_figure

        if watcher is None:
            return {}
        added = watcher.poll()
        status = runs.refresh(watcher.run_dir)
        out = {
            reg["train.progress"]: progress_html(watcher.series, status),
            reg["train.status"]: views.status_text(watcher.run_dir, status),
            reg["train.log"]: tail_lines(RunFolder(watcher.run_dir).log, 30),
        }
        if added or not getattr(watcher, "drawn", False):
            out[reg["train.plot"]] = training_figure(watcher.series, watcher.run_dir.name)
            watcher.drawn = True
        return out

    reg["train.start"].click(start, reg.form_inputs(), reg.many(*WATCHED))
    reg["train.clear_locks"].click(
        clear_locks, reg.form_inputs(), form_state.check_outputs(reg), **form_state.SERIAL
    )
    reg["train.stop"].click(stop, watcher_state, reg["train.status"])
    demo.load(
        lambda data: form_state.check(ctx, reg, data),
        reg.form_inputs(),
        form_state.check_outputs(reg),
        **form_state.SERIAL,
    )
    demo.load(attach, reg["session.stored_run"], [watcher_state, reg["train.status"]])
    timer = gr.Timer(1.0)
    timer.tick(
        tick,
        watcher_state,
        reg.many("train.plot", "train.progress", "train.status", "train.log"),
        show_progress="hidden",
    )
    memory_panel.bind(ctx, reg, "train-memory")
