"""One studio in a notebook: the form, the command, the data, the runs and the evaluation.

:class:`Studio` is the notebook's counterpart of the web UI's page and holds everything per
instance (no module globals), so two studios in one kernel do not share a form or a watched
run. Each button of its panels calls one of its public methods, and a cell can call the same
method: ``studio.set(max_steps=12)``, ``studio.check_data()``, ``studio.start()``,
``studio.wait_for_step(4)``, ``studio.stop()``, ``studio.resume()``, ``studio.evaluate()``.
The methods call the core (``studio.form``, ``studio.preflight``, ``studio.runs``,
``studio.datawork``, ``studio.evaluation``) and return its data; the panels only show it.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from studio import command, preflight, runs
from studio import config as config_mod
from studio.config import ConfigError, StudioConfig
from studio.problems import ERROR, Problem, errors
from studio.runfolder import RunFolder, RunState
from studio.runlog import tail_lines

DEFAULT_EVAL_DATA = "example_data/eval"


class Studio:
    """The studio as ipywidgets over the core; display it (last line of a cell) to use it.

    config:   a StudioConfig, a YAML path, or None for the quickstart (bundled model and
              example_data/, as the web UI starts).
    runs_dir: the folder of run folders, relative to base_dir (default ``runs``).
    base_dir: the folder relative paths are read from, as the shell script would (``.``).
    """

    def __init__(
        self,
        config: StudioConfig | str | Path | None = None,
        runs_dir: str | Path = "runs",
        base_dir: str | Path = ".",
        lang: str = "en",
    ):
        import ipywidgets as w

        from studio.notebook.data_panel import DataPanel
        from studio.notebook.eval_panel import EvalPanel
        from studio.notebook.extra_panels import MemoryBox, MergeBox, ScoreBox
        from studio.notebook.form_widgets import FormWidgets
        from studio.notebook.runs_panel import RunsPanel
        from studio.notebook.session import RunSession
        from studio.notebook.train_panel import TrainPanel

        self.base_dir = Path(base_dir).resolve()
        self.runs_dir = (self.base_dir / runs_dir).resolve()
        self.lang = lang
        self.form = FormWidgets(self._initial(config), lang)
        self.command = w.HTML()
        self.preflight = w.HTML()
        self.session = RunSession(self.runs_dir, self.base_dir, on_update=self._run_updated)
        self.train_tab = TrainPanel(self, lang)
        self.data_tab = DataPanel(self, lang)
        self.runs_tab = RunsPanel(self, lang)
        self.eval_tab = EvalPanel(self, lang)
        self.memory_box = MemoryBox(self, lang)
        self.score_box = ScoreBox(self, lang)
        self.merge_box = MergeBox(self, self.eval_tab, lang)
        self.data_tab.widget.children += (self.score_box.widget,)
        self.eval_tab.widget.children += (self.merge_box.widget,)
        self._command_panel = None
        self._tabs = None
        self.form.on_change(self._form_changed)
        self._form_changed("*")

    def _initial(self, config) -> StudioConfig:
        from studio.config import default_config

        if isinstance(config, StudioConfig):
            return config
        if config is None:
            return default_config(None)
        path = Path(config)
        if not path.is_absolute() and not path.exists():
            path = self.base_dir / path
        return config_mod.load(path)

    # ------------------------------------------------------------------ the form
    def config(self) -> StudioConfig:
        """The config the form describes; raises ConfigError if a widget holds a bad value."""
        cfg, problems = self.form.read()
        if errors(problems):
            raise ConfigError(errors(problems))
        return cfg

    def problems(self) -> list[Problem]:
        """The form's bad values and every pre-flight finding, errors first."""
        cfg, problems = self.form.read()
        return problems + preflight.run_checks(cfg, self.base_dir)

    def command_text(self) -> str:
        """The shell script for the form's config (runs with FlagEmbedding alone)."""
        cfg, _ = self.form.read()
        return command.render_script(cfg)

    def set(self, **values: Any) -> StudioConfig:
        """Set fields as a user would type them: ``studio.set(max_steps=12, precision='fp16')``."""
        self.form.set(**values)
        return self.form.read()[0]

    def set_module(self, module: str):
        """Switch the fine-tune module (``embedder.encoder_only.m3``, ``reranker.encoder_only.base``
        ...): the form is rebuilt for it, values that still apply are kept. Returns what was
        kept and dropped (``.kept``, ``.dropped``, ``.message()``), as the web UI shows it."""
        return self.form.switch_module(module)

    def load(self, config: StudioConfig | str | Path) -> StudioConfig:
        """Show a config (or a YAML file) in the form."""
        cfg = self._initial(config)
        self.form.fill(cfg)
        return cfg

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write the form's config as YAML (relative paths: under base_dir)."""
        target = Path(path)
        if not target.is_absolute():
            target = self.base_dir / target
        return config_mod.save(self.config(), target, overwrite=overwrite)

    def import_script(self, path: str | Path, base_dir: str | Path | None = None) -> list[Problem]:
        """Read a launch script into the form; return what the shell would have hidden."""
        from studio.script_import import import_script

        source = Path(path)
        if not source.is_absolute():
            source = self.base_dir / source
        text = source.read_text(encoding="utf-8")
        result = import_script(text, base_dir=Path(base_dir or source.parent), file=source.name)
        self.form.fill(result.config)
        return result.problems

    def _form_changed(self, _name: str) -> None:
        cfg, problems = self.form.read()
        try:
            self.command.value = _render_pre(command.render_script(cfg))
            problems = problems + preflight.run_checks(cfg, self.base_dir)
        except Exception as exc:  # noqa: BLE001 - a half-typed form must not break the page
            problems = problems + [Problem(ERROR, f"{type(exc).__name__}: {exc}")]
        from studio.notebook.render import problems_html

        self.preflight.value = problems_html(problems)
        self.train_tab.set_startable(not errors(problems))

    # ------------------------------------------------------------------ data
    def _resolved(self) -> StudioConfig:
        return config_mod.resolve_paths(self.config(), self.base_dir)

    def _data(self, paths, cfg: StudioConfig) -> list[str]:
        if isinstance(paths, str | Path):
            paths = [paths]
        if paths:
            return [str((self.base_dir / Path(p).expanduser()).resolve()) for p in paths]
        return list(cfg.args.get("train_data") or [])

    def check_data(self, paths: Sequence[str | Path] | str | None = None):
        """Check every row as FlagEmbedding will read it (default: the form's train_data)."""
        from studio.datawork import check

        cfg = self._resolved()
        return check.check_paths(
            self._data(paths, cfg),
            knowledge_distillation=bool(cfg.args.get("knowledge_distillation")),
            train_group_size=cfg.args.get("train_group_size"),
        )

    def data_stats(self, paths: Sequence[str | Path] | str | None = None):
        """Statistics: rows, positives/negatives per row, duplicates, leakage, steps per epoch."""
        from studio.datawork import stats

        cfg = self._resolved()
        return stats.stats(self._data(paths, cfg), cfg)

    def preview(self, n: int = 8, paths=None, seed: int | None = None):
        """The first n rows (or a seeded sample) as the model will see them, instructions in."""
        from studio.datawork import instructions

        cfg = self._resolved()
        return instructions.preview(cfg, n=n, paths=self._data(paths, cfg), seed=seed)

    def instruction_warnings(self, paths=None) -> list[Problem]:
        """The instruction-format traps for this config and its data."""
        from studio.datawork import instructions

        cfg = self._resolved()
        return instructions.format_warnings(cfg.with_args(train_data=self._data(paths, cfg)))

    def token_lengths(self, sample_size: int = 2000, paths=None, seed: int = 0):
        """Token lengths with the model's tokenizer; ``.table()`` and ``.figure()``."""
        from studio.datawork import tokens

        cfg = self._resolved()
        return tokens.token_lengths(
            cfg, sample_size, seed, paths=self._data(paths, cfg), base_dir=self.base_dir
        )

    # ------------------------------------------------------------------ fit, teach, merge
    def estimate_memory(self, device: tuple[str, int] | None = None):
        """Peak memory per device of the form's config (studio.memory.Estimate)."""
        from studio import memory

        return memory.estimate(self.config(), self.base_dir, device=device)

    def score_data(
        self,
        path: str | Path | None = None,
        out: str | Path = "train.scored.jsonl",
        model: str | None = None,
        temperature: float | None = None,
    ):
        """Add teacher scores to a training file (default: the form's first train_data);
        re-running resumes. Returns a ScoreResult (``kd_settings()`` says what to set)."""
        from studio.datawork import score

        cfg = self._resolved()
        data = self._data(path, cfg)
        if len(data) != 1:
            raise ValueError("Scoring works on one file: pass its path.")
        scorer = score.make_scorer(
            model or cfg.get("model_name_or_path") or "", cfg, self.base_dir, temperature
        )
        return score.score_file(data[0], self.base_dir / out, scorer)

    def merge(
        self,
        model: str | Path,
        base: str | Path = "bundled:all-MiniLM-L6-v2",
        weights: str | Sequence[float] = "0,0.5,1",
        eval_data: str | Path | None = None,
        general_data: str | Path | None = None,
        out: str | Path = "merges",
        ks: str | Sequence[int] = (1, 5, 10, 100),
    ):
        """LM-Cocktail mixes of ``model`` and ``base``, each evaluated (a MergeReport)."""
        from studio.evaluation import merge
        from studio.evaluation.metrics import parse_ks

        return merge.sweep(
            base,
            model,
            merge.parse_weights(weights if isinstance(weights, str) else list(weights)),
            self._eval_path(eval_data),
            self.base_dir / out,
            general_data=self._eval_path(general_data) if general_data else None,
            config=self.config(),
            ks=parse_ks(ks),
        )

    # ------------------------------------------------------------------ the watched run
    @property
    def run_dir(self) -> Path | None:
        return self.session.run_dir

    @property
    def series(self):
        """The watched run's metrics (studio.charts.Series): steps, loss, lr, grad norm."""
        return self.session.series

    @property
    def figure(self):
        """The live loss chart (a Plotly FigureWidget)."""
        return self.train_tab.figure

    def start(self, name: str | None = None) -> Path:
        """Pre-flight, then launch the form's config in the background; return its folder.

        Raises ConfigError for bad form values and runs.PreflightFailed for failed checks.
        The chart then refreshes once a second by itself.
        """
        return self.session.start(self.config(), name=name)

    def stop(self, run: str | Path | None = None) -> dict[str, Any]:
        """Stop the watched run (or a named one); return its final status."""
        if run is not None:
            target = runs.find_run(run, self.runs_dir)
            if self.run_dir is None or target.resolve() != self.run_dir.resolve():
                return runs.stop(target)
        return self.session.stop()

    def clear_stale_locks(self) -> list[Path]:
        """Remove DeepSpeed build locks no live process holds (the pre-flight names them)."""
        from studio.buildlocks import clear_stale_locks

        return clear_stale_locks()

    def resume(self, run: str | Path | None = None) -> Path:
        """Continue the watched run (or a named one) from its last checkpoint, and watch it."""
        target = runs.find_run(run, self.runs_dir) if run is not None else None
        return self.session.resume(target)

    def export(self, target: str, out_dir: str | Path, **options: Any):
        """Write the form's config for a cluster into ``out_dir`` (relative to base_dir):
        ``nodes`` (node-K.sh; nnodes=, head=, port=, nproc_per_node=, socket_ifname=),
        ``slurm`` (job.sbatch + node.sh; slurm_settings=) or ``skypilot`` (task.yaml;
        skypilot_settings=). Returns an ExportResult (files, problems, summary())."""
        from studio.cluster.export import export

        return export(self.config(), target, self.base_dir / out_dir, self.base_dir, **options)

    def submit_slurm(self, **settings: Any) -> Path:
        """``sbatch`` the form's config and watch the run (queued, then running...).

        Keywords are :class:`studio.cluster.slurm.SlurmSettings` fields: nodes, gpus_per_node,
        cpus_per_task, time, partition, account, socket_ifname.
        """
        from studio.cluster import slurm

        run_dir = slurm.submit(
            self.config(), slurm.SlurmSettings(**settings), self.runs_dir, self.base_dir
        )
        return self.session.watch(run_dir)

    def watch(self, run: str | Path | None = None) -> Path:
        """Follow a run in the Train panel (default: the newest running run, else the newest)."""
        if run is None:
            listed = self.list_runs()
            if not listed:
                raise FileNotFoundError(f"no runs in {self.runs_dir}")
            running = [r for r in listed if r.state in runs.ACTIVE_STATES]
            target = (running or listed)[0].path
        else:
            target = runs.find_run(run, self.runs_dir)
        return self.session.watch(target)

    def refresh(self) -> int:
        """Fold the run's new metrics into the chart and progress; return the new steps.

        The background thread calls this once a second; a cell or a test may call it too.
        """
        return self.session.refresh()

    def status(self) -> dict[str, Any]:
        """The watched run's status.json (state, exit code, attempt, resumed_from, error)."""
        self.refresh()
        return dict(self.session.status)

    def wait(self, timeout_s: float | None = None) -> dict[str, Any]:
        """Block until the watched run ends (the chart keeps growing); return its status."""
        return self.session.wait(timeout_s)

    def wait_for_step(self, step: int, timeout_s: float | None = 600) -> int:
        """Block until the run has logged `step`; return the last logged step."""
        self.session.wait_until(lambda: self.series.last_step >= step, f"step {step}", timeout_s)
        return self.series.last_step

    def wait_for_checkpoint(self, timeout_s: float | None = 600) -> Path:
        """Block until the run has saved a complete checkpoint (what resume starts from)."""
        found: list[Path] = []

        def saved() -> bool:
            checkpoint = runs.last_checkpoint(self.run_dir)
            # The Trainer writes trainer_state.json last: before it, a checkpoint is partial.
            if checkpoint is not None and (checkpoint / "trainer_state.json").is_file():
                found[:] = [checkpoint]
                return True
            return False

        self.session.wait_until(saved, "a saved checkpoint", timeout_s)
        return found[0]

    def close(self) -> None:
        """End the refresh thread (runs go on: they live on disk)."""
        self.session.halt()

    def _run_updated(self, session, added: int) -> None:
        self.train_tab.update(session, added)

    # ------------------------------------------------------------------ runs on disk
    def list_runs(self) -> list[runs.RunSummary]:
        """Every run in the runs folder, newest first."""
        return runs.list_runs(self.runs_dir)

    def runs_frame(self):
        """The runs as a table: name, status, step, max_steps, last loss, started."""
        import pandas as pd

        columns = ["name", "status", "step", "max_steps", "last_loss", "started"]
        return pd.DataFrame([r.row() for r in self.list_runs()], columns=columns)

    def open_run(self, run: str | Path) -> dict[str, Any]:
        """A run's summary (status, evaluation), loss figure, config.yaml and log tail."""
        from studio.charts import training_figure
        from studio.evaluation.present import comparison_table
        from studio.evaluation.run_eval import read_run_eval
        from studio.notebook.render import status_html, table_html
        from studio.watch import RunWatcher

        run_dir = runs.find_run(run, self.runs_dir)
        watcher = RunWatcher(run_dir)
        watcher.poll()
        summary = status_html(run_dir, runs.refresh(run_dir))
        report = read_run_eval(run_dir)
        if report and report.get("models"):
            summary += "<b>Evaluation</b>" + table_html(comparison_table(report).reset_index())
        return {
            "summary": summary,
            "figure": training_figure(watcher.series, run_dir.name),
            "config": RunFolder(run_dir).config.read_text(encoding="utf-8"),
            "log": tail_lines(RunFolder(run_dir).log, 40),
        }

    def compare_runs(self, names: Sequence[str]):
        """The loss curves of several runs in one figure."""
        from studio.charts import overlay_figure
        from studio.watch import RunWatcher

        named = {}
        for name in names:
            watcher = RunWatcher(runs.find_run(name, self.runs_dir))
            watcher.poll()
            named[Path(name).name] = watcher.series
        return overlay_figure(named)

    def load_run_config(self, run: str | Path) -> StudioConfig:
        """Put a run's config in the form, for a new run (its own output_dir is dropped)."""
        cfg = runs.load_run_config(runs.find_run(run, self.runs_dir)).with_args(output_dir=None)
        self.form.fill(cfg)
        return cfg

    # ------------------------------------------------------------------ evaluation
    def default_eval_data(self) -> str:
        """The form's studio.eval_data, else example_data/eval when it is there."""
        chosen = self.form.studio_values().get("eval_data")
        if chosen:
            return chosen
        return DEFAULT_EVAL_DATA if (self.base_dir / DEFAULT_EVAL_DATA).is_dir() else ""

    def _eval_path(self, eval_data: str | Path | None) -> Path:
        path = Path(eval_data or self.default_eval_data() or DEFAULT_EVAL_DATA)
        path = path if path.is_absolute() else self.base_dir / path
        if not path.is_dir():
            raise FileNotFoundError(f"no evaluation folder {path}")
        return path.resolve()

    def evaluate(
        self,
        run: str | Path | None = None,
        eval_data: str | Path | None = None,
        ks: str | Sequence[int] = (1, 5, 10, 100),
        include_checkpoints: bool = False,
        retriever: str | Path | None = None,
    ) -> dict[str, Any]:
        """Before/after: a run's base and final model (and checkpoints) -> its eval.json.

        Default run: the watched one, else the newest that succeeded. Default data: the
        run config's ``studio.eval_data``, else the form's, else example_data/eval. The
        module's own scores come too (M3's dense/sparse/colbert/hybrid; a reranker's rerank
        over ``retriever``'s top k, the bundled model by default, and that first stage alone).
        """
        from studio.evaluation.metrics import parse_ks
        from studio.evaluation.run_eval import evaluate_run

        run_dir = self._finished_run(run)
        data = None
        if eval_data is not None or not runs.load_run_config(run_dir).studio.get("eval_data"):
            data = self._eval_path(eval_data)
        if retriever:
            from studio.config import resolve_model

            retriever = resolve_model(str(retriever), self.base_dir)
        return evaluate_run(
            run_dir,
            data,
            ks=parse_ks(ks),
            include_checkpoints=include_checkpoints,
            retriever=retriever or None,
        )

    def _finished_run(self, run: str | Path | None) -> Path:
        if run is not None:
            return runs.find_run(run, self.runs_dir)
        if self.run_dir is not None:
            return self.run_dir
        done = [r for r in self.list_runs() if r.state == RunState.SUCCEEDED]
        if not done:
            raise FileNotFoundError(f"no finished run in {self.runs_dir} to evaluate")
        return done[0].path

    def compare_models(
        self,
        baseline: str | Path,
        model: str | Path,
        eval_data: str | Path | None = None,
        ks: str | Sequence[int] = (1, 5, 10, 100),
        retriever: str | Path | None = None,
    ) -> dict[str, Any]:
        """Any two models on held-out data, encoded with the form's pooling and instructions
        (scored the form's module's way; ``retriever`` is a reranker's first stage)."""
        from studio.evaluation.evaluate import compare_models
        from studio.evaluation.metrics import parse_ks

        return compare_models(
            baseline,
            model,
            self._eval_path(eval_data),
            self.config(),
            parse_ks(ks),
            self.base_dir,
            retriever=retriever or None,
        )

    def eval_view(self, report: dict[str, Any]) -> dict[str, Any]:
        """What a report shows: summary HTML, metrics table, bar chart, per-query, steps."""
        from studio.evaluation.present import results_view

        table, chart, per_query, steps = results_view(report, None)
        from studio.evaluation.module_eval import summary_line

        line = summary_line(report)
        summary = f"<b>{html.escape(line)}</b>" if line else ""
        notes = "".join(f"<li>{html.escape(w)}</li>" for w in report.get("warnings", []))
        return {
            "summary": summary + (f"<ul>{notes}</ul>" if notes else ""),
            "table": table,
            "chart": chart,
            "per_query": per_query,
            "steps": steps,
        }

    # ------------------------------------------------------------------ panels
    def form_panel(self):
        """The config form: Model & data, Training (basic first, groups folded), Launch."""
        import ipywidgets as w

        from studio.i18n import t

        pages = self.form.pages()
        return w.Tab(
            children=[pages["model"], pages["training"], pages["launch"]],
            titles=[t(f"tab.{k}", self.lang) for k in ("model", "training", "launch")],
        )

    def command_panel(self):
        """The live command, pre-flight, save/load a config and import a script."""
        import ipywidgets as w

        from studio.i18n import t
        from studio.notebook.actions import wire
        from studio.notebook.cluster_panel import cluster_panel

        if self._command_panel is not None:
            return self._command_panel
        lang = self.lang
        wide = {"style": {"description_width": "initial"}, "layout": w.Layout(width="60%")}
        path = w.Text(description=t("config_path", lang), **wide)
        overwrite = w.Checkbox(description=t("overwrite", lang), indent=False)
        save = w.Button(description=t("save_config", lang))
        load = w.Button(description=t("load_config", lang))
        script = w.Text(description=t("script_path", lang), **wide)
        import_button = w.Button(description=t("import_script", lang))
        message = w.HTML()
        diagnostics = w.HTML()

        def do_save():
            message.value = f"Saved {html.escape(str(self.save(path.value, overwrite.value)))}."

        def do_load():
            self.load(path.value)
            message.value = f"Loaded {html.escape(path.value)}."

        def do_import():
            from studio.notebook.render import problems_html

            diagnostics.value = problems_html(self.import_script(script.value))

        wire(save, do_save, message)
        wire(load, do_load, message)
        wire(import_button, do_import, message)
        self._command_panel = w.VBox(
            [
                w.HTML(f"<b>{t('command', lang)}</b>"),
                self.command,
                w.HTML(f"<b>{t('preflight', lang)}</b>"),
                self.preflight,
                self.memory_box.widget,
                w.HBox([path, overwrite]),
                w.HBox([save, load]),
                w.HBox([script, import_button]),
                message,
                diagnostics,
                cluster_panel(self),
            ]
        )
        return self._command_panel

    def data_panel(self):
        return self.data_tab.widget

    def train_panel(self):
        return self.train_tab.widget

    def runs_panel(self):
        self.runs_tab.update()
        return self.runs_tab.widget

    def eval_panel(self):
        self.eval_tab.update()
        return self.eval_tab.widget

    def widget(self):
        """Everything in tabs, in the web UI's order."""
        import ipywidgets as w

        from studio.i18n import t

        if self._tabs is None:
            pages = self.form.pages()
            lang = self.lang
            tabs = [
                (t("tab.model", lang), pages["model"]),
                (t("tab.training", lang), pages["training"]),
                (t("tab.launch", lang), pages["launch"]),
                (t("tab.data", lang), self.data_panel()),
                (t("tab.command", lang), self.command_panel()),
                (t("tab.train", lang), self.train_panel()),
                (t("tab.runs", lang), self.runs_panel()),
                (t("tab.evaluate", lang), self.eval_panel()),
            ]
            self._tabs = w.Tab(
                children=[box for _, box in tabs], titles=[title for title, _ in tabs]
            )
        return self._tabs

    def display(self) -> None:
        from IPython.display import display

        display(self.widget())

    def _ipython_display_(self) -> None:
        self.display()

    def launch_web(self, **kwargs: Any):
        """The Gradio studio over this form's config and runs, inline in the notebook."""
        from studio.notebook.web import launch_web

        return launch_web(
            self.config(), runs_dir=self.runs_dir, base_dir=self.base_dir, lang=self.lang, **kwargs
        )


def _render_pre(text: str) -> str:
    from studio.notebook.render import pre

    return pre(text, max_height="30em")
