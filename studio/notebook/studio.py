"""One studio in a notebook: the form, the command, the data, the runs and the evaluation.

:class:`Studio` is the notebook's counterpart of the web UI's page and holds everything per
instance (no module globals), so two studios in one kernel do not share a form or a watched
run. Each button of its panels calls one of its public methods, and a cell can call the same
method: ``studio.set(max_steps=12)``, ``studio.check_data()``, ``studio.start()``,
``studio.wait_for_step(4)``, ``studio.stop()``, ``studio.resume()``, ``studio.evaluate()``.
The methods call the core (``studio.core.form``, ``studio.checks.preflight``, ``studio.training.runs``,
``studio.datawork``, ``studio.evaluation``) and return its data; the panels only show it.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from studio.app import actions, views
from studio.app.actions import DEFAULT_EVAL_DATA
from studio.core.config import ConfigError, StudioConfig
from studio.facts.problems import Problem, errors
from studio.training import runs


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
        from studio.notebook.extra_panels import ConvertBox, MemoryBox, MergeBox, PairsBox, ScoreBox
        from studio.notebook.form_widgets import FormWidgets
        from studio.notebook.runs_panel import RunsPanel
        from studio.notebook.session import RunSession
        from studio.notebook.train_panel import TrainPanel

        self.ws = actions.Workspace.at(runs_dir, base_dir)
        self.base_dir, self.runs_dir = self.ws.base_dir, self.ws.runs_dir
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
        self.pairs_box = PairsBox(self, lang)
        self.convert_box = ConvertBox(self, lang)
        self.merge_box = MergeBox(self, self.eval_tab, lang)
        self.data_tab.widget.children += (
            self.pairs_box.widget,
            self.convert_box.widget,
            self.score_box.widget,
        )
        self.eval_tab.widget.children += (self.merge_box.widget,)
        self._command_panel = None
        self._tabs = None
        self.form.on_change(self._form_changed)
        self._form_changed("*")

    def _initial(self, config) -> StudioConfig:
        from studio.core.config import default_config

        if isinstance(config, StudioConfig):
            return config
        if config is None:
            return default_config(None)
        return actions.load_config(self.ws, config)

    # ------------------------------------------------------------------ the form
    def config(self) -> StudioConfig:
        """The config the form describes; raises ConfigError if a widget holds a bad value."""
        cfg, problems = self.form.read()
        if errors(problems):
            raise ConfigError(errors(problems))
        return cfg

    def problems(self) -> list[Problem]:
        """The form's bad values and every pre-flight finding, errors first."""
        return actions.check_form(self.ws, *self.form.read()).problems

    def command_text(self) -> str:
        """The shell script for the form's config (runs with FlagEmbedding alone)."""
        return actions.check_form(self.ws, *self.form.read()).script

    def set(self, **values: Any) -> StudioConfig:
        """Set fields as a user would type them: ``studio.set(max_steps=12, precision='fp16')``."""
        self.form.set(**values)
        return self.form.read()[0]

    def set_module(self, module: str):
        """Switch the fine-tune module (``embedder.decoder_only.icl``, ``reranker.encoder_only.base``
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
        return actions.save_config(self.ws, self.config(), path, overwrite)

    def import_script(self, path: str | Path, base_dir: str | Path | None = None) -> list[Problem]:
        """Read a launch script into the form; return what the shell would have hidden."""
        result = actions.import_script(self.ws, path, base_dir)
        self.form.fill(result.config)
        return result.problems

    def _form_changed(self, _name: str) -> None:
        from studio.notebook.render import problems_html

        result = actions.check_form(self.ws, *self.form.read())
        self.command.value = _render_pre(result.script)
        self.preflight.value = problems_html(result.problems)
        self.train_tab.set_startable(result.startable)

    # ------------------------------------------------------------------ data
    def check_data(self, paths: Sequence[str | Path] | str | None = None):
        """Check every row as FlagEmbedding will read it (default: the form's train_data)."""
        return actions.check_data(self.ws, self.config(), paths)

    def data_stats(self, paths: Sequence[str | Path] | str | None = None):
        """Statistics: rows, positives/negatives per row, duplicates, leakage, steps per epoch."""
        return actions.data_stats(self.ws, self.config(), paths)

    def preview(self, n: int = 8, paths=None, seed: int | None = None):
        """The first n rows (or a seeded sample) as the model will see them, instructions in."""
        return actions.preview(self.ws, self.config(), paths, n=n, seed=seed).rows

    def instruction_warnings(self, paths=None) -> list[Problem]:
        """The instruction-format traps for this config and its data."""
        return actions.preview(self.ws, self.config(), paths, n=0).warnings

    def token_lengths(self, sample_size: int = 2000, paths=None, seed: int = 0):
        """Token lengths with the model's tokenizer; ``.table()`` and ``.figure()``."""
        return actions.token_lengths(self.ws, self.config(), paths, sample_size, seed)

    def difficulty(self, sample_size: int = 1000, paths=None):
        """How hard the negatives are for the form's model: too easy (the loss goes to ~0)
        or near-copies of the positive; ``.summary()``, ``.problems``, ``.figure()``."""
        return actions.difficulty(self.ws, self.config(), paths, sample_size)

    def mine(
        self,
        out: str | Path = "train.mined.jsonl",
        paths=None,
        range_from: int = 10,
        range_to: int = 100,
        n: int = 7,
        max_neg_ratio: float | None = None,
        candidate_pool: str | None = None,
    ):
        """Hard negatives for one file with the form's model; ``max_neg_ratio`` (e.g. 0.95)
        drops likely false negatives. A MineResult."""
        return actions.mine(
            self.ws,
            self.config(),
            paths,
            str(out),
            range_from,
            range_to,
            n,
            candidate_pool,
            max_neg_ratio=max_neg_ratio,
        )

    # ------------------------------------------------------------------ fit, teach, merge
    def estimate_memory(self, device: tuple[str, int] | None = None):
        """Peak memory per device of the form's config (studio.memory.Estimate)."""
        return actions.estimate_memory(self.ws, self.config(), device)

    def convert_beir(self, folder: str | Path, out: str | Path, min_grade: int = 1):
        """A BEIR folder's judgments as training rows (positives graded ``min_grade`` or
        more); a ConvertResult whose problems say what to mine next."""
        return actions.convert_beir(self.ws, self.config(), str(folder), str(out), min_grade)

    def score_data(
        self,
        path: str | Path | None = None,
        out: str | Path = "train.scored.jsonl",
        model: str | None = None,
        temperature: float | None = None,
    ):
        """Add teacher scores to a training file (default: the form's first train_data);
        re-running resumes. Returns a ScoreResult (``kd_settings()`` says what to set)."""
        return actions.score_data(self.ws, self.config(), path, out, model, temperature=temperature)

    def make_pairs(
        self,
        corpus: str | Path,
        out: str | Path = "pairs.jsonl",
        method: str = "title",
        base_url: str = "",
        model: str = "",
        questions: int = 1,
        force: bool = False,
    ):
        """Training pairs from documents (``title``, ``crop`` or ``llm``); mine negatives next.
        Returns a PairsResult (``summary()``, ``problems``)."""
        return actions.make_pairs(
            self.ws, str(corpus), str(out), method, base_url, model, questions, force
        )

    def adapt(
        self,
        corpus: str | Path,
        out: str | Path = "adapt",
        method: str = "title",
        max_steps: int = 150,
        restart: bool = False,
    ):
        """Documents to the best model by held-out nDCG@10 (pairs, split, mining, a run scored
        at every save, merges with the base). Shows the table and what was exported; returns
        the AdaptResult."""
        from IPython.display import Markdown, display

        result = actions.adapt(
            self.ws, str(corpus), str(out), method, max_steps=max_steps, restart=restart, say=print
        )
        display(Markdown(views.adapt_text(result)))
        return result

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
        return actions.merge(
            self.ws,
            self.config(),
            str(model),
            str(base),
            weights,
            eval_data,
            general_data,
            out,
            ks,
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
            target = actions.find_run(self.ws, run)
            if self.run_dir is None or target.resolve() != self.run_dir.resolve():
                return actions.stop(self.ws, target)
        return self.session.stop()

    def clear_stale_locks(self) -> list[Path]:
        """Remove DeepSpeed build locks no live process holds (the pre-flight names them)."""
        return actions.clear_stale_locks()

    def resume(self, run: str | Path | None = None) -> Path:
        """Continue the watched run (or a named one) from its last checkpoint, and watch it."""
        target = actions.find_run(self.ws, run) if run is not None else None
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
            target = actions.find_run(self.ws, run)
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

        view = actions.open_run(self.ws, run)
        return {
            "summary": views.to_html(view.summary()),
            "figure": view.figure(),
            "config": view.config_text,
            "log": view.log,
        }

    def compare_runs(self, names: Sequence[str]):
        """The loss curves of several runs in one figure."""
        return actions.compare_runs(self.ws, names)

    def load_run_config(self, run: str | Path) -> StudioConfig:
        """Put a run's config in the form, for a new run (its own output_dir is dropped)."""
        cfg = actions.run_config(self.ws, run)
        self.form.fill(cfg)
        return cfg

    # ------------------------------------------------------------------ evaluation
    def default_eval_data(self) -> str:
        """The form's studio.eval_data, else example_data/eval when it is there."""
        chosen = self.form.studio_values().get("eval_data")
        if chosen:
            return chosen
        return DEFAULT_EVAL_DATA if (self.base_dir / DEFAULT_EVAL_DATA).is_dir() else ""

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
        run config's ``studio.eval_data``, else example_data/eval. The module's own scores
        come too (every score of the module; a reranker's rerank over ``retriever``'s
        top k, the bundled model by default, and that first stage alone).
        """
        return actions.evaluate_run(
            self.ws,
            self._finished_run(run),
            eval_data,
            ks,
            str(retriever) if retriever else None,
            include_checkpoints=include_checkpoints,
            form=self.form.read()[0],
        )

    def _finished_run(self, run: str | Path | None) -> Path:
        if run is not None:
            return actions.find_run(self.ws, run)
        if self.run_dir is not None:
            return self.run_dir
        done = actions.finished_runs(self.ws)
        if not done:
            raise FileNotFoundError(f"no finished run in {self.runs_dir} to evaluate")
        return actions.find_run(self.ws, done[0])

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
        return actions.compare_models(
            self.ws,
            self.config(),
            str(baseline),
            str(model),
            eval_data,
            ks,
            str(retriever) if retriever else None,
        )

    def eval_view(self, report: dict[str, Any]) -> dict[str, Any]:
        """What a report shows: summary HTML, metrics table, bar chart, per-query, steps."""

        view = actions.eval_view(report)
        return {
            "summary": views.to_html(view.summary),
            "table": view.table,
            "chart": view.chart,
            "per_query": view.per_query,
            "steps": view.steps,
        }

    # ------------------------------------------------------------------ panels
    def form_panel(self):
        """The config form: Model & data, Training (basic first, groups folded), Launch."""
        import ipywidgets as w

        from studio.facts.i18n import t

        pages = self.form.pages()
        return w.Tab(
            children=[pages["model"], pages["training"], pages["launch"]],
            titles=[t(f"tab.{k}", self.lang) for k in ("model", "training", "launch")],
        )

    def command_panel(self):
        """The live command, pre-flight, save/load a config and import a script."""
        import ipywidgets as w

        from studio.facts.i18n import t
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

        from studio.facts.i18n import t

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
