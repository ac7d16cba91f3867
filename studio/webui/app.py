"""The Gradio app: one function per tab lays out components; `build_app` wires them to the core.

Per-browser state: the watched run (`gr.State`, plus its name in `gr.BrowserState` so a page
reload re-attaches) and the keys of the last loaded config. Runs are read from disk, so
several browsers — or a restarted studio — see the same runs, and nobody's click overrides
another's form.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from studio import command, form, labels, loss_health, modules, preflight, runs
from studio import config as config_mod
from studio.config import StudioConfig
from studio.hardware import detect
from studio.i18n import t
from studio.problems import ERROR, Problem
from studio.runfolder import RunFolder, RunState
from studio.runlog import tail_lines
from studio.webui import memory_panel
from studio.webui.registry import Registry, field_info, make_input

CSS = """
.studio-invalid input, .studio-invalid textarea { border-color: #e5484d !important; }
.studio-invalid .info, .studio-invalid span[data-testid="block-info"] + div { color: #e5484d; }
#studio-progress .bar { height: 14px; background: #e8e8ef; border-radius: 7px; overflow: hidden; }
#studio-progress .fill { height: 100%; background: #636efa; }
"""


@dataclass
class AppContext:
    runs_dir: Path
    base_dir: Path
    lang: str = "en"
    initial: StudioConfig | None = None


# --------------------------------------------------------------------------- pure helpers


def loaded_state(cfg: StudioConfig) -> dict:
    """What a session remembers of the config it loaded beyond the widgets' values: the keys it
    set, its `studio:` section and its fine-tune module (whose fields the form shows)."""
    return {"args": list(cfg.args), "studio": dict(cfg.studio), "module": cfg.module}


def session_schema(loaded):
    """The schema of the module the session's form shows."""
    from studio.schema import load_schema

    return load_schema((loaded or {}).get("module"))


def problems_markdown(problems: list[Problem]) -> str:
    if not problems:
        return "✅ No problems found."
    icons = {"error": "❌", "warning": "⚠️", "info": "ℹ️"}
    lines = []
    for p in problems:
        where = f" `{p.where()}`" if p.where() else ""
        fix = f" — *{p.fix}*" if p.fix else ""
        lines.append(f"- {icons.get(p.level, '')} **{p.level}**{where}: {p.message}{fix}")
    return "\n".join(lines)


def progress_html(series, status: dict | None = None) -> str:
    """The bar and its line; before the first step, what the run is doing (its phase)."""
    import html

    from studio.charts import progress
    from studio.runfolder import phase_text

    info = progress(series)
    pct = 100 * info["fraction"]
    eta = info["eta_s"]
    eta_text = f"{eta:.0f}s" if isinstance(eta, int | float) else "–"
    line = (
        f"step <b>{info['step']}</b>/{info['total'] or '?'} · elapsed "
        f"{info['elapsed_s']:.0f}s · ETA {eta_text}"
    )
    phase = phase_text(status or {})
    if phase and not info["step"]:
        line = f"<span id='studio-phase'>{html.escape(phase)}</span>"
    return (
        f"<div id='studio-progress'><div class='bar'><div class='fill' "
        f"style='width:{pct:.1f}%'></div></div>"
        f"<div>{line}</div></div>"
    )


def status_markdown(run_dir: Path | None, status: dict | None) -> str:
    from studio.runfolder import phase_text

    if run_dir is None:
        return ""
    status = status or {}
    state = status.get("state", "unknown")
    icon = {
        RunState.RUNNING: "🟢",
        RunState.QUEUED: "⏳",
        RunState.SUCCEEDED: "✅",
        RunState.FAILED: "❌",
        RunState.STOPPED: "⏹",
    }.get(state, "")
    text = f"{icon} **{run_dir.name}** — {state}"
    if status.get("reason"):  # the scheduler's word: Slurm's Resources, Priority...
        text += f" ({status['reason']})"
    phase = phase_text(status)
    if phase:
        text += f" · {phase}"
    if status.get("exit_code") not in (None, 0):
        text += f" (exit code {status['exit_code']})"
    if status.get("error"):
        text += f"\n\n**Error:** `{status['error']}`"
    if status.get("log_tail"):
        text += "\n\nLast lines of this attempt's log:\n\n```\n" + status["log_tail"] + "\n```"
    for warning in loss_health.warning_lines(run_dir):
        text += f"\n\n⚠️ {warning}"
    return text


class Handlers:
    """The callbacks, over one AppContext; each returns values for its outputs."""

    def __init__(self, ctx: AppContext, reg: Registry):
        self.ctx = ctx
        self.reg = reg

    # -- form -> config
    def config_from(self, values, loaded) -> tuple[StudioConfig, list[Problem]]:
        """The config of the form; `loaded` (session state) keeps what the widgets do not hold:
        the keys the loaded config set explicitly and its `studio:` section."""
        form_values, launch_values = self.reg.split(values)
        loaded = loaded or {}
        schema = session_schema(loaded)
        shown = form.module_field_names(schema.module)
        return form.values_to_config(
            {k: v for k, v in form_values.items() if k in shown},
            launch_values,
            studio=loaded.get("studio"),
            explicit=tuple(loaded.get("args") or ()),
            schema=schema,
        )

    def refresh(self, *values):
        """Command, pre-flight and Start's state for the current form."""
        import gradio as gr

        *values, explicit = values
        cfg, problems = self.config_from(values, explicit)
        problems += preflight.run_checks(cfg, self.ctx.base_dir)
        has_error = any(p.level == ERROR for p in problems)
        return (
            command.render_script(cfg),
            problems_markdown(problems),
            gr.update(interactive=not has_error),
        )

    def field_changed(self, name: str):
        import gradio as gr

        def handler(*values):
            schema = session_schema(values[-1])
            if name not in schema:
                return (gr.skip(), *self.refresh(*values))
            f = schema[name]
            raw = values[list(self.reg.form).index(name)]
            error = form.field_error(name, raw, schema)
            marker = gr.update(
                info=field_info(f, error),
                elem_classes=["studio-field"] + (["studio-invalid"] if error else []),
            )
            return (marker, *self.refresh(*values))

        return handler

    # -- config -> form
    def fill(self, cfg: StudioConfig, previous=None) -> list:
        """Updates for `reg.fill_targets()`: the module's fields shown and set, the others
        hidden, and an accordion only where the module has fields in it.

        Only fields the previous module (`previous`: the session state) showed are hidden:
        Gradio 6 does not render a hidden input, and one told to hide again while hidden
        stayed hidden when later told to show."""
        import gradio as gr

        schema = cfg.schema
        was_shown = form.module_field_names(session_schema(previous).module)
        values = form.config_to_values(cfg, schema)
        launch = form.config_to_launch(cfg)
        updates = []
        for name in self.reg.form:
            if name not in values:
                updates.append(gr.update(visible=False) if name in was_shown else gr.skip())
                continue
            f = schema[name]
            extra = {"choices": list(f.choices)} if form.widget_kind(f) == "dropdown" else {}
            updates.append(gr.update(value=values[name], visible=True, info=field_info(f), **extra))
        groups = [
            gr.update(visible=any(f.name in values for f in fields))
            for fields in self.group_fields.values()
        ]
        return [
            *updates,
            *[launch[k] for k in form.LAUNCH_KEYS],
            loaded_state(cfg),
            cfg.module,
            *groups,
        ]

    def switch_module(self, module: str, *values):
        """The module menu changed: keep the values that still apply, show what was dropped."""
        import gradio as gr

        from studio.module_switch import switch_module

        *values, loaded = values
        if module == (loaded or {}).get("module", modules.DEFAULT_MODULE):
            return [*[gr.skip()] * len(self.reg.fill_targets()), gr.skip()]
        cfg, _ = self.config_from(values, loaded)
        result = switch_module(cfg, module)
        return [*self.fill(result.config, loaded), result.message()]

    def load_config(self, path: str, upload, loaded=None) -> list:
        import gradio as gr

        source = upload if upload else path
        if not source:
            raise gr.Error("Give a config path or upload a file.")
        try:
            cfg = config_mod.load(source)
        except config_mod.ConfigError as exc:
            raise gr.Error(problems_markdown(exc.problems)) from None
        return [*self.fill(cfg, loaded), f"Loaded {Path(source).name}."]

    def save_config(self, path: str, overwrite: bool, *values):
        import gradio as gr

        *values, explicit = values
        cfg, problems = self.config_from(values, explicit)
        if any(p.level == ERROR for p in problems):
            raise gr.Error(problems_markdown(problems))
        if not path:
            raise gr.Error("Give a path to save the config to.")
        target = Path(path)
        if not target.is_absolute():
            target = self.ctx.base_dir / target
        try:
            config_mod.save(cfg, target, overwrite=bool(overwrite))
        except FileExistsError:
            raise gr.Error(f"{target} exists. Tick 'overwrite' or pick another name.") from None
        return f"Saved {target}."

    def download(self, *values):
        *values, explicit = values
        cfg, _ = self.config_from(values, explicit)
        folder = Path(tempfile.mkdtemp(prefix="bge-studio-"))
        script = folder / "command.sh"
        script.write_text(command.render_script(cfg), encoding="utf-8")
        cfg_file = folder / "config.yaml"
        cfg_file.write_text(config_mod.dump(cfg), encoding="utf-8")
        return str(script), str(cfg_file)

    def import_script(self, path: str, upload, base_dir: str, loaded=None):
        import gradio as gr

        from studio.script_import import import_script

        source = upload if upload else path
        if not source:
            raise gr.Error("Give a script path or upload a script.")
        src = Path(source)
        try:
            text = src.read_text(encoding="utf-8")
        except OSError as exc:
            raise gr.Error(f"Cannot read {src}: {exc.strerror}") from None
        base = Path(base_dir) if base_dir else (Path(path).parent if path else self.ctx.base_dir)
        result = import_script(text, base_dir=base, file=Path(path).name if path else src.name)
        rows = [[p.level, p.line or "", p.field or "", p.message, p.fix] for p in result.problems]
        return [*self.fill(result.config, loaded), rows]

    # -- runs
    def start(self, *values):
        import gradio as gr

        from studio.watch import RunWatcher

        *values, explicit = values
        cfg, problems = self.config_from(values, explicit)
        if any(p.level == ERROR for p in problems):
            raise gr.Error(problems_markdown(problems))
        try:
            run_dir = runs.start(cfg, self.ctx.runs_dir, self.ctx.base_dir)
        except runs.PreflightFailed as exc:
            raise gr.Error(problems_markdown(exc.problems)) from None
        watcher = RunWatcher(run_dir)
        return watcher, run_dir.name, status_markdown(run_dir, runs.refresh(run_dir))

    def clear_locks(self, *values):
        """The user agrees: remove DeepSpeed build locks no live process holds."""
        from studio.buildlocks import clear_stale_locks

        removed = clear_stale_locks()
        note = (
            "Removed: " + ", ".join(f"`{p}`" for p in removed)
            if removed
            else "No stale build lock found."
        )
        script, checks, start = self.refresh(*values)
        return script, f"{note}\n\n{checks}", start

    def stop(self, watcher):
        import gradio as gr

        if watcher is None:
            raise gr.Error("No run is being watched.")
        status = runs.stop(watcher.run_dir)
        return status_markdown(watcher.run_dir, status)

    def attach(self, stored: str | None):
        """On page load: re-attach to the run this browser watched, else a running one."""
        from studio.watch import RunWatcher

        run_dir = runs.run_in(self.ctx.runs_dir, stored)  # the browser's value: contained
        if run_dir is None:
            running = [
                r for r in runs.list_runs(self.ctx.runs_dir) if r.state in runs.ACTIVE_STATES
            ]
            run_dir = running[0].path if running else None
        if run_dir is None:
            return None, t("no_run", self.ctx.lang)
        return RunWatcher(run_dir), status_markdown(run_dir, runs.refresh(run_dir))

    def tick(self, watcher):
        """Once a second: fold in new metrics lines; redraw only when something changed."""
        import gradio as gr

        from studio.charts import training_figure

        if watcher is None:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        added = watcher.poll()
        status = runs.refresh(watcher.run_dir)
        first = not getattr(watcher, "drawn", False)
        figure = gr.skip()
        if added or first:
            figure = training_figure(watcher.series, watcher.run_dir.name)
            watcher.drawn = True
        return (
            figure,
            progress_html(watcher.series, status),
            status_markdown(watcher.run_dir, status),
            tail_lines(RunFolder(watcher.run_dir).log, 30),
        )

    def runs_table(self):
        import gradio as gr

        rows = [r.row() for r in runs.list_runs(self.ctx.runs_dir)]
        table = [[r["name"], r["status"], r["step"], r["last_loss"], r["started"]] for r in rows]
        names = [r["name"] for r in rows]
        return table, gr.update(choices=names), gr.update(choices=names)

    def open_run(self, name: str | None):
        import gradio as gr

        from studio.charts import training_figure
        from studio.watch import RunWatcher

        if not name:
            return "", None, "", ""
        run_dir = self.ctx.runs_dir / name
        if not RunFolder(run_dir).is_run():
            raise gr.Error(f"No run {name} in {self.ctx.runs_dir}.")
        watcher = RunWatcher(run_dir)
        watcher.poll()
        cfg_text = RunFolder(run_dir).config.read_text(encoding="utf-8")
        status = runs.refresh(run_dir)
        summary = status_markdown(run_dir, status) + self.eval_summary(run_dir)
        return (
            cfg_text,
            training_figure(watcher.series, name),
            summary,
            tail_lines(RunFolder(run_dir).log, 40),
        )

    def eval_summary(self, run_dir: Path) -> str:
        import json

        path = run_dir / "eval.json"
        if not path.is_file():
            return ""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            return "\n\n*eval.json is not readable.*"
        models = data.get("models") or {}
        if not models:
            return ""
        keys = [
            k
            for k in ("ndcg_at_10", "recall_at_10", "mrr_at_10", "map_at_10")
            if any(k in m for m in models.values())
        ]
        head = "| model | " + " | ".join(keys) + " |\n|---|" + "---|" * len(keys)
        body = "\n".join(
            f"| {name} | " + " | ".join(f"{m.get(k, float('nan')):.4f}" for k in keys) + " |"
            for name, m in models.items()
        )
        return "\n\n**Evaluation**\n\n" + head + "\n" + body

    def load_run_config(self, name: str | None, loaded=None):
        import gradio as gr

        if not name:
            raise gr.Error("Pick a run first.")
        cfg = runs.load_run_config(self.ctx.runs_dir / name)
        # A run's output_dir is its own folder: a new run from this config gets a new one.
        cfg = cfg.with_args(output_dir=None)
        return self.fill(cfg, loaded)

    def resume(self, name: str | None):
        import gradio as gr

        from studio.watch import RunWatcher

        if not name:
            raise gr.Error("Pick a run first.")
        try:
            run_dir = runs.resume(self.ctx.runs_dir / name)
        except RuntimeError as exc:
            raise gr.Error(str(exc)) from None
        return RunWatcher(run_dir), run_dir.name, status_markdown(run_dir, runs.refresh(run_dir))

    def stop_named(self, name: str | None):
        import gradio as gr

        if not name:
            raise gr.Error("Pick a run first.")
        status = runs.stop(self.ctx.runs_dir / name)
        return status_markdown(self.ctx.runs_dir / name, status)

    def watch_named(self, name: str | None):
        from studio.watch import RunWatcher

        if not name:
            return None, None, ""
        run_dir = self.ctx.runs_dir / name
        return RunWatcher(run_dir), name, status_markdown(run_dir, runs.refresh(run_dir))

    def compare(self, names: list[str] | None):
        from studio.charts import overlay_figure
        from studio.watch import RunWatcher

        named = {}
        for name in names or []:
            watcher = RunWatcher(self.ctx.runs_dir / name)
            watcher.poll()
            named[name] = watcher.series
        return overlay_figure(named)

    def switch_language(self, lang: str):
        import gradio as gr

        updates = [gr.update(label=labels.field_label(n, lang)) for n in self.reg.form]
        updates += [gr.update(label=t(k, lang)) for k in form.LAUNCH_KEYS]
        for comp, key in self.reg.texts:
            if isinstance(comp, gr.Button | gr.DownloadButton):
                updates.append(gr.update(value=t(key, lang)))
            elif isinstance(comp, gr.Markdown):
                updates.append(gr.update(value=f"### {t(key, lang)}"))
            else:
                updates.append(gr.update(label=t(key, lang)))
        return updates


# --------------------------------------------------------------------------- layout


def _input(reg: Registry, f, cfg: StudioConfig, values: dict, lang: str) -> None:
    """One field's input; built for every module's fields, shown for the config's module."""
    shown = f.name in values
    f = cfg.schema[f.name] if shown else f
    value = values[f.name] if shown else form.to_widget(f, None)
    reg.form[f.name] = make_input(f, value, lang, visible=shown)


def _model_data_tab(reg: Registry, cfg: StudioConfig, lang: str) -> None:
    import gradio as gr

    reg.module = gr.Dropdown(
        [(f"{m.title} · {name}", name) for name, m in modules.MODULES.items()],
        value=cfg.module,
        label=t("module", lang),
        info="FlagEmbedding.finetune.<module>: each has its own arguments.",
        elem_id="studio-module",
    )
    reg.text(reg.module, "module")
    reg.module_message = gr.Markdown(elem_id="studio-module-msg")
    values = form.config_to_values(cfg, cfg.schema)
    gr.Markdown(t("bundled_hint", lang))
    model_data, _, _ = form.all_modules_layout()
    for f in model_data:
        _input(reg, f, cfg, values, lang)


def _training_tab(reg: Registry, cfg: StudioConfig, lang: str) -> dict:
    import gradio as gr

    values = form.config_to_values(cfg, cfg.schema)
    _, basic, groups = form.all_modules_layout()
    with gr.Group():
        for f in basic:
            _input(reg, f, cfg, values, lang)
    for group, fields in groups.items():
        shown = any(f.name in values for f in fields)
        with gr.Accordion(labels.group_label(group, lang), open=False, visible=shown) as box:
            for f in fields:
                _input(reg, f, cfg, values, lang)
        reg.groups[group] = box
    return groups


def _launch_tab(reg: Registry, cfg: StudioConfig, lang: str) -> None:
    import gradio as gr

    launch = form.config_to_launch(cfg)
    L = reg.launch
    L["precision"] = gr.Radio(
        list(form.PRECISIONS),
        value=launch["precision"],
        label=t("precision", lang),
        elem_id="launch-precision",
    )
    with gr.Row():
        L["nproc_per_node"] = gr.Number(
            launch["nproc_per_node"], precision=0, minimum=1, label=t("nproc_per_node", lang)
        )
        L["nnodes"] = gr.Number(launch["nnodes"], precision=0, minimum=1, label=t("nnodes", lang))
        L["node_rank"] = gr.Number(
            launch["node_rank"], precision=0, minimum=0, label=t("node_rank", lang)
        )
        L["master_addr"] = gr.Textbox(launch["master_addr"], label=t("master_addr", lang))
        L["master_port"] = gr.Number(
            launch["master_port"], precision=0, label=t("master_port", lang)
        )
    L["ds_mode"] = gr.Radio(
        list(form.DS_MODES),
        value=launch["ds_mode"],
        label=t("ds_mode", lang),
        elem_id="launch-ds-mode",
    )
    with gr.Row():
        L["ds_stage"] = gr.Dropdown(
            [0, 1, 2, 3],
            value=launch["ds_stage"],
            label=t("ds_stage", lang),
            elem_id="launch-ds-stage",
        )
        L["ds_offload_optimizer"] = gr.Checkbox(
            launch["ds_offload_optimizer"], label=t("ds_offload_optimizer", lang)
        )
        L["ds_offload_param"] = gr.Checkbox(
            launch["ds_offload_param"], label=t("ds_offload_param", lang)
        )
        L["ds_precision"] = gr.Dropdown(
            list(form.DS_PRECISIONS), value=launch["ds_precision"], label=t("ds_precision", lang)
        )
    L["ds_file"] = gr.Textbox(launch["ds_file"], label=t("ds_file", lang))
    reg.text(gr.Markdown(f"### {t('hardware', lang)}"), "hardware")
    gr.Markdown(detect().describe(), elem_id="studio-hardware")


def build_app(ctx: AppContext):
    """The whole studio as a gr.Blocks (not launched)."""
    import gradio as gr

    cfg = ctx.initial or StudioConfig()
    lang = ctx.lang
    reg = Registry()
    h = Handlers(ctx, reg)

    with gr.Blocks(title="BGE Studio") as demo:
        explicit = gr.State(loaded_state(cfg))
        reg.explicit = explicit
        reg.config_from = h.config_from
        watcher = gr.State(None)
        stored_run = gr.BrowserState(None, storage_key="bge-studio-watched-run")
        with gr.Row():
            gr.Markdown(f"# {t('title', lang)}\n{t('subtitle', lang)}")
            lang_radio = gr.Radio(
                ["en", "zh"],
                value=lang,
                label=t("language", lang),
                elem_id="studio-lang",
                scale=0,
                min_width=160,
            )
        with gr.Tabs():
            with gr.Tab(t("tab.model", lang), id="model"):
                _model_data_tab(reg, cfg, lang)
            with gr.Tab(t("tab.training", lang), id="training"):
                h.group_fields = _training_tab(reg, cfg, lang)
            with gr.Tab(t("tab.launch", lang), id="launch"):
                _launch_tab(reg, cfg, lang)
                memory_panel.build(ctx, reg, lang, "launch-memory")
            with gr.Tab(t("tab.data", lang), id="data"):
                _optional_tab("studio.webui.data_tab", ctx, reg, lang)
            with gr.Tab(t("tab.command", lang), id="command"):
                script = gr.Code(
                    command.render_script(cfg),
                    language="shell",
                    label=t("command", lang),
                    interactive=False,
                    elem_id="studio-command",
                    buttons=["copy", "download"],
                )
                reg.text(script, "command")
                with gr.Row():
                    dl_script = gr.DownloadButton(t("download_script", lang))
                    dl_config = gr.DownloadButton(t("download_config", lang))
                    reg.text(dl_script, "download_script")
                    reg.text(dl_config, "download_config")
                with gr.Row():
                    cfg_path = reg.text(
                        gr.Textbox(label=t("config_path", lang), elem_id="studio-config-path"),
                        "config_path",
                    )
                    overwrite = reg.text(gr.Checkbox(label=t("overwrite", lang)), "overwrite")
                with gr.Row():
                    save_btn = reg.text(gr.Button(t("save_config", lang)), "save_config")
                    load_btn = reg.text(gr.Button(t("load_config", lang)), "load_config")
                cfg_upload = reg.text(
                    gr.File(
                        label=t("upload_config", lang),
                        type="filepath",
                        file_types=[".yaml", ".yml"],
                    ),
                    "upload_config",
                )
                cfg_msg = gr.Markdown()
                with gr.Row():
                    script_path = reg.text(
                        gr.Textbox(label=t("script_path", lang), elem_id="studio-script-path"),
                        "script_path",
                    )
                    script_base = reg.text(gr.Textbox(label=t("script_base", lang)), "script_base")
                script_upload = reg.text(
                    gr.File(
                        label=t("upload_script", lang), type="filepath", file_types=[".sh", ".txt"]
                    ),
                    "upload_script",
                )
                import_btn = reg.text(
                    gr.Button(t("import_script", lang), elem_id="studio-import"), "import_script"
                )
                diagnostics = gr.Dataframe(
                    headers=["level", "line", "field", "message", "fix"],
                    label=t("diagnostics", lang),
                    wrap=True,
                    elem_id="studio-diagnostics",
                    interactive=False,
                )
                reg.text(diagnostics, "diagnostics")
                with gr.Accordion(t("cluster", lang), open=False, elem_id="studio-cluster"):
                    _optional_tab("studio.webui.cluster_tab", ctx, reg, lang)
            with gr.Tab(t("tab.train", lang), id="train"):
                preflight_md = gr.Markdown(elem_id="studio-preflight")
                with gr.Row():
                    start_btn = reg.text(
                        gr.Button(t("start", lang), variant="primary", elem_id="studio-start"),
                        "start",
                    )
                    stop_btn = reg.text(
                        gr.Button(t("stop", lang), variant="stop", elem_id="studio-stop"), "stop"
                    )
                    clear_locks_btn = reg.text(
                        gr.Button(t("clear_locks", lang), elem_id="studio-clear-locks"),
                        "clear_locks",
                    )
                status_md = gr.Markdown(elem_id="studio-status")
                with gr.Accordion(t("memory", lang), open=False):
                    memory_panel.build(ctx, reg, lang, "train-memory")
                progress = gr.HTML(elem_id="studio-progress-box")
                plot = gr.Plot(elem_id="studio-train-plot")
                log_tail = reg.text(
                    gr.Textbox(
                        label=t("log", lang),
                        lines=12,
                        max_lines=12,
                        interactive=False,
                        elem_id="studio-log",
                    ),
                    "log",
                )
            with gr.Tab(t("tab.runs", lang), id="runs"):
                refresh_btn = reg.text(
                    gr.Button(t("refresh", lang), elem_id="runs-refresh"), "refresh"
                )
                runs_df = gr.Dataframe(
                    headers=["name", "status", "step", "last loss", "started"],
                    interactive=False,
                    elem_id="runs-table",
                )
                run_pick = reg.text(
                    gr.Dropdown(choices=[], label=t("run", lang), elem_id="runs-pick"), "run"
                )
                with gr.Row():
                    load_run_btn = reg.text(
                        gr.Button(t("load_run_config", lang)), "load_run_config"
                    )
                    resume_btn = reg.text(
                        gr.Button(t("resume", lang), elem_id="runs-resume"), "resume"
                    )
                    stop_run_btn = reg.text(gr.Button(t("stop", lang)), "stop")
                run_summary = gr.Markdown(elem_id="runs-summary")
                run_plot = gr.Plot(elem_id="runs-plot")
                with gr.Accordion("config.yaml", open=False):
                    run_config = gr.Code(language="yaml", interactive=False)
                run_log = gr.Textbox(lines=10, max_lines=10, interactive=False, label="train.log")
                compare_pick = reg.text(
                    gr.CheckboxGroup(choices=[], label=t("compare", lang), elem_id="runs-compare"),
                    "compare",
                )
                compare_plot = gr.Plot(elem_id="runs-compare-plot")
            with gr.Tab(t("tab.evaluate", lang), id="evaluate"):
                eval_handles = _optional_tab("studio.webui.eval_tab", ctx, reg, lang)

        inputs = reg.inputs() + [explicit]
        refresh_out = [script, preflight_md, start_btn]
        fill_out = reg.fill_targets()
        # "always_last": keystrokes typed while an update runs must not be dropped (Gradio's
        # default for .input is "once"), or the command would show a stale value.
        for name, comp in reg.form.items():
            comp.input(
                h.field_changed(name),
                inputs,
                [comp, *refresh_out],
                show_progress="hidden",
                trigger_mode="always_last",
            )
        for comp in reg.launch_components():
            comp.input(
                h.refresh, inputs, refresh_out, show_progress="hidden", trigger_mode="always_last"
            )
        demo.load(h.refresh, inputs, refresh_out)
        reg.module.input(
            h.switch_module, [reg.module, *inputs], [*fill_out, reg.module_message]
        ).then(h.refresh, inputs, refresh_out)

        load_btn.click(h.load_config, [cfg_path, cfg_upload, explicit], [*fill_out, cfg_msg]).then(
            h.refresh, inputs, refresh_out
        )
        save_btn.click(h.save_config, [cfg_path, overwrite, *inputs], cfg_msg)
        dl_script.click(h.download, inputs, [dl_script, dl_config])
        dl_config.click(h.download, inputs, [dl_script, dl_config])
        import_btn.click(
            h.import_script,
            [script_path, script_upload, script_base, explicit],
            [*fill_out, diagnostics],
        ).then(h.refresh, inputs, refresh_out)

        start_btn.click(h.start, inputs, [watcher, stored_run, status_md])
        clear_locks_btn.click(h.clear_locks, inputs, refresh_out)
        stop_btn.click(h.stop, watcher, status_md)
        demo.load(h.attach, stored_run, [watcher, status_md])
        timer = gr.Timer(1.0)
        timer.tick(h.tick, watcher, [plot, progress, status_md, log_tail], show_progress="hidden")

        table_out = [runs_df, run_pick, compare_pick]
        refresh_btn.click(h.runs_table, None, table_out)
        demo.load(h.runs_table, None, table_out)
        run_pick.change(h.open_run, run_pick, [run_config, run_plot, run_summary, run_log])
        load_run_btn.click(h.load_run_config, [run_pick, explicit], fill_out).then(
            h.refresh, inputs, refresh_out
        )
        resume_btn.click(h.resume, run_pick, [watcher, stored_run, status_md]).then(
            h.runs_table, None, table_out
        )
        stop_run_btn.click(h.stop_named, run_pick, run_summary).then(h.runs_table, None, table_out)
        compare_pick.change(h.compare, compare_pick, compare_plot)

        if eval_handles:
            eval_run_pick, eval_list_runs = eval_handles
            demo.load(eval_list_runs, None, eval_run_pick)

        text_comps = [c for c, _ in reg.texts]
        lang_radio.change(
            h.switch_language,
            lang_radio,
            reg.form_components() + reg.launch_components() + text_comps,
        )
    # The page's events are its wiring, not an API: each carries ~160 form inputs, and listing
    # them made the page 10 MB and showed config defaults to anyone before the login.
    for fn in demo.fns.values():
        fn.api_visibility = "private"
    return demo


def _optional_tab(module: str, ctx: AppContext, reg: Registry, lang: str):
    """Tabs whose core lives in other packages (data workbench, evaluation)."""
    import importlib

    import gradio as gr

    try:
        mod = importlib.import_module(module)
    except ImportError:
        gr.Markdown(t("coming", lang))
        return None
    return mod.build(ctx, reg, lang)


def initial_config(path: str | Path | None, base_dir: Path) -> StudioConfig:
    """The form's starting point: a config file, else the embedded quickstart default."""
    return config_mod.default_config(path)
