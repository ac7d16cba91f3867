"""What a user can do, as functions: the one layer under the web UI and the notebook.

Every button of both faces calls one function here with the form's config (or a run name) and
gets data back (a path, a status dict, a report, a :class:`RunView`); the faces only lay out
widgets and render what comes back, through :mod:`studio.app.views`. The copies the faces used to
keep (their own run lookup, run summary, cutoff parsing, data paths) drifted apart; here each
exists once. A :class:`Workspace` is the context every action reads: where runs live and what
relative paths are relative to.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.checks import preflight
from studio.cluster import slurm as _slurm  # noqa: F401  (registers Slurm runs' launcher)
from studio.core import command
from studio.core import config as config_mod
from studio.core.config import StudioConfig
from studio.facts.problems import ERROR, Problem
from studio.facts.runfolder import RunFolder, RunState
from studio.training import runs

DEFAULT_EVAL_DATA = "example_data/eval"


@dataclass(frozen=True)
class Workspace:
    """Where a studio's runs live and the folder relative paths are read from (as the shell
    script would read them)."""

    runs_dir: Path
    base_dir: Path

    @classmethod
    def at(cls, runs_dir: str | Path, base_dir: str | Path = ".") -> Workspace:
        base = Path(base_dir).resolve()
        return cls((base / runs_dir).resolve(), base)

    def path(self, text: str | Path) -> Path:
        """A user-typed path: `~` expanded, relative ones under base_dir."""
        return self.base_dir / Path(str(text)).expanduser()


# ---------------------------------------------------------------------------- the form


@dataclass
class FormCheck:
    """What the page shows for a form as it is: the script, every problem, and whether Start
    may be pressed."""

    script: str
    problems: list[Problem]

    @property
    def startable(self) -> bool:
        return not any(p.level == ERROR for p in self.problems)


def check_form(ws: Workspace, cfg: StudioConfig, problems: Sequence[Problem] = ()) -> FormCheck:
    """The command and pre-flight for the form's config; `problems` are the form's own (values
    a widget holds that cannot be used). A half-typed form must not break the page, so an
    exception becomes an error line."""
    found = list(problems)
    script = ""
    try:
        script = command_script(ws, cfg)
        found += preflight.run_checks(cfg, ws.base_dir)
    except Exception as exc:  # noqa: BLE001 - shown as a problem; the page goes on
        found.append(Problem(ERROR, f"{type(exc).__name__}: {exc}"))
    return FormCheck(script, found)


def command_script(ws: Workspace, cfg: StudioConfig) -> str:
    """The script the config runs, with the paths the run will read (resolved against the
    config's base, as `studio command` prints it); as written when they cannot be resolved."""
    with contextlib.suppress(config_mod.ConfigError):
        cfg = config_mod.resolve_paths(cfg, ws.base_dir)
    return command.render_script(cfg)


def require_valid(cfg: StudioConfig, problems: Sequence[Problem]) -> StudioConfig:
    """The config, or ConfigError carrying the form's errors (each names its field)."""
    bad = [p for p in problems if p.level == ERROR]
    if bad:
        raise config_mod.ConfigError(bad)
    return cfg


def load_config(ws: Workspace, source: str | Path) -> StudioConfig:
    """A YAML config, by path (absolute, as given when it exists, else under base_dir)."""
    path = Path(source).expanduser()
    if not path.is_absolute() and not path.exists():
        path = ws.base_dir / path
    return config_mod.load(path)


def save_config(ws: Workspace, cfg: StudioConfig, path: str | Path, overwrite: bool) -> Path:
    """Write the config as YAML; an existing file is kept unless `overwrite`."""
    if not str(path or "").strip():
        raise ValueError("Give a path to save the config to.")
    target = Path(path).expanduser()
    target = target if target.is_absolute() else ws.base_dir / target
    try:
        return config_mod.save(
            config_mod.record_base(cfg, target), target, overwrite=bool(overwrite)
        )
    except FileExistsError:
        raise FileExistsError(
            f"{target} exists. Tick 'overwrite' or pick another name (nothing was written)."
        ) from None


def import_script(ws: Workspace, path: str | Path, base_dir: str | Path | None = None):
    """A launch script read into a config (studio.script_import.ImportResult): what the shell
    would have run and the problems it would have hidden. Relative paths in the script are read
    from `base_dir` (default: the script's folder)."""
    from studio.checks.script_import import import_script as parse

    source = Path(path).expanduser()
    source = source if source.is_absolute() else ws.base_dir / source
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise FileNotFoundError(f"Cannot read {source}: {exc.strerror}") from None
    base = ws.path(base_dir) if base_dir else source.parent
    return parse(text, base_dir=base, file=source.name)


# ---------------------------------------------------------------------------- runs


def find_run(ws: Workspace, run: str | Path, inside: bool = False) -> Path:
    """A run folder by name (in the runs folder) or by path; FileNotFoundError names where it
    looked. `inside=True` for names a browser sent (anyone can edit those): only a folder
    directly inside the runs folder, no separators, no `..`, no link out."""
    if inside:
        found = runs.run_in(ws.runs_dir, str(run) if run is not None else None)
        if found is None:
            raise FileNotFoundError(f"no run {run!r} in {ws.runs_dir}")
        return found
    return runs.find_run(run, ws.runs_dir)


def start(ws: Workspace, cfg: StudioConfig, name: str | None = None) -> Path:
    """Pre-flight, then launch in the background; raises runs.PreflightFailed."""
    return runs.start(cfg, ws.runs_dir, ws.base_dir, name=name)


def stop(ws: Workspace, run: str | Path, inside: bool = False) -> dict[str, Any]:
    """Stop a run and every process it started; its final status."""
    return runs.stop(find_run(ws, run, inside))


def resume(ws: Workspace, run: str | Path, inside: bool = False) -> Path:
    """Continue a run from its last complete checkpoint (a new attempt, same folder)."""
    return runs.resume(find_run(ws, run, inside))


def run_to_watch(ws: Workspace, stored: str | None) -> Path | None:
    """On opening a page: the run this browser watched (if still there), else a live one."""
    found = runs.run_in(ws.runs_dir, stored)
    if found is None:
        live = [r for r in runs.list_runs(ws.runs_dir) if r.state in runs.ACTIVE_STATES]
        found = live[0].path if live else None
    return found


def runs_rows(ws: Workspace) -> list[dict[str, Any]]:
    """Every run, newest first: name, status, step, max_steps, last loss, started."""
    return [r.row() for r in runs.list_runs(ws.runs_dir)]


def finished_runs(ws: Workspace) -> list[str]:
    """The names of the runs that succeeded (what can be evaluated), newest first."""
    return [r.name for r in runs.list_runs(ws.runs_dir) if r.state == RunState.SUCCEEDED]


@dataclass
class RunView:
    """One run as the Runs tab shows it."""

    run_dir: Path
    status: dict[str, Any]
    series: Any  # studio.charts.Series
    config_text: str
    log: str
    report: Any = None  # eval.json (a dict), None when not evaluated, False when unreadable

    def summary(self) -> str:
        from studio.app import views

        return views.run_summary(self.run_dir, self.status, self.report)

    def figure(self):
        from studio.training.charts import training_figure

        return training_figure(self.series, self.run_dir.name)


def open_run(ws: Workspace, run: str | Path, inside: bool = False) -> RunView:
    """A run's status (refreshed), loss series, config.yaml, log tail and evaluation."""
    from studio.facts.statusfile import read_json
    from studio.training.runlog import tail_lines
    from studio.training.watch import RunWatcher

    run_dir = find_run(ws, run, inside)
    folder = RunFolder(run_dir)
    watcher = RunWatcher(run_dir)
    watcher.poll()
    report: Any = None
    if folder.eval.is_file():
        report = read_json(folder.eval) or False
    return RunView(
        run_dir=run_dir,
        status=runs.refresh(run_dir),
        series=watcher.series,
        config_text=folder.config.read_text(encoding="utf-8") if folder.config.is_file() else "",
        log=tail_lines(folder.log, 40),
        report=report,
    )


def compare_runs(ws: Workspace, names: Sequence[str | Path], inside: bool = False):
    """The loss curves of several runs in one figure (each under its folder's name)."""
    from studio.training.charts import overlay_figure
    from studio.training.watch import RunWatcher

    named = {}
    for name in names or ():
        watcher = RunWatcher(find_run(ws, name, inside))
        watcher.poll()
        named[watcher.run_dir.name] = watcher.series
    return overlay_figure(named)


def run_config(ws: Workspace, run: str | Path, inside: bool = False) -> StudioConfig:
    """A run's config for a new run: its own output_dir is dropped (the new run gets one)."""
    return runs.load_run_config(find_run(ws, run, inside)).with_args(output_dir=None)


def clear_stale_locks() -> list[Path]:
    """Remove the DeepSpeed build locks no live process holds (the pre-flight names them)."""
    from studio.core.buildlocks import clear_stale_locks as clear

    return clear()


# ---------------------------------------------------------------------------- data


def data_paths(ws: Workspace, cfg: StudioConfig, paths: Any = None) -> list[str]:
    """The files a data action reads: those typed (a list, or text with one per line),
    else the form's train_data; relative paths under base_dir, as the run will read them."""
    if isinstance(paths, str):
        paths = [line.strip() for line in paths.splitlines() if line.strip()]
    elif isinstance(paths, Path):
        paths = [paths]
    chosen = list(paths or ()) or list(cfg.args.get("train_data") or [])
    return [str(ws.path(p).resolve()) for p in chosen]


def one_data_file(ws: Workspace, cfg: StudioConfig, paths: Any, what: str) -> str:
    found = data_paths(ws, cfg, paths)
    if len(found) != 1:
        raise ValueError(f"{what} works on one file: give its path (got {len(found)}).")
    return found[0]


def _resolved(ws: Workspace, cfg: StudioConfig) -> StudioConfig:
    return config_mod.resolve_paths(cfg, ws.base_dir)


def check_data(ws: Workspace, cfg: StudioConfig, paths: Any = None):
    """Every row checked as FlagEmbedding will read it (a datawork.check report)."""
    from studio.datawork import check

    cfg = _resolved(ws, cfg)
    return check.check_paths(
        data_paths(ws, cfg, paths),
        knowledge_distillation=bool(cfg.args.get("knowledge_distillation")),
        train_group_size=cfg.args.get("train_group_size"),
    )


def data_stats(ws: Workspace, cfg: StudioConfig, paths: Any = None):
    from studio.datawork import stats

    cfg = _resolved(ws, cfg)
    return stats.stats(data_paths(ws, cfg, paths), cfg)


@dataclass
class Preview:
    rows: list[Any]
    warnings: list[Problem] = field(default_factory=list)


def preview(ws: Workspace, cfg: StudioConfig, paths: Any = None, n: int = 8, seed=None) -> Preview:
    """Rows as the model will see them (instructions in) and the instruction-format traps."""
    from studio.datawork import instructions

    cfg = _resolved(ws, cfg)
    data = data_paths(ws, cfg, paths)
    rows = instructions.preview(cfg, n=n, paths=data, seed=seed)
    return Preview(rows, instructions.format_warnings(cfg.with_args(train_data=data)))


def token_lengths(ws: Workspace, cfg: StudioConfig, paths: Any = None, sample_size=2000, seed=0):
    from studio.datawork import tokens

    cfg = _resolved(ws, cfg)
    return tokens.token_lengths(
        cfg, int(sample_size or 2000), seed, paths=data_paths(ws, cfg, paths), base_dir=ws.base_dir
    )


def split_data(ws: Workspace, cfg: StudioConfig, paths: Any, out: str, n: int, seed: int = 0):
    from studio.datawork import split

    source = one_data_file(ws, _resolved(ws, cfg), paths, "Split")
    return split.split(source, ws.path(out), int(n), int(seed or 0))


def convert_beir(ws: Workspace, cfg: StudioConfig, paths: Any, out: str, min_grade: int = 1):
    """A BEIR folder (the one path given) as training rows: positives graded `min_grade` or
    more, passages judged 0 as negatives (studio.datawork.convert.convert)."""
    from studio.datawork import convert

    source = one_data_file(ws, cfg, paths, "Converting")
    return convert.convert(source, ws.path(out), min_grade=int(min_grade or 1))


def mine(
    ws: Workspace,
    cfg: StudioConfig,
    paths: Any,
    out: str,
    range_from: int = 10,
    range_to: int = 100,
    n: int = 15,
    candidate_pool: str | None = None,
    only_rows_lacking: bool = True,
    max_neg_ratio: float | None = None,
    progress=None,
):
    """Hard negatives for one file with the config's model and instructions: candidates ranked
    range_from..range_to, n kept per row, none scoring ``max_neg_ratio`` of the positive or more
    (studio.datawork.mining.mine)."""
    from studio.datawork import mining

    cfg = _resolved(ws, cfg)
    source = one_data_file(ws, cfg, paths, "Mining")
    return mining.mine(
        source,
        ws.path(out),
        None,
        int(range_from),
        int(range_to),
        int(n),
        candidate_pool=candidate_pool or None,
        only_rows_lacking=bool(only_rows_lacking),
        config=cfg,
        base_dir=ws.base_dir,
        max_neg_ratio=float(max_neg_ratio) if max_neg_ratio else None,
        progress=progress,
    )


def difficulty(ws: Workspace, cfg: StudioConfig, paths: Any, sample_size: int = 1000):
    """How hard the negatives are for the config's model (too easy, near-copies of the
    positive): a datawork.difficulty Difficulty with its chart."""
    from studio.datawork import difficulty as difficulty_mod

    cfg = _resolved(ws, cfg)
    files = data_paths(ws, cfg, paths)
    return difficulty_mod.for_config(files, cfg, ws.base_dir, sample_size=int(sample_size or 1000))


def score_data(
    ws: Workspace,
    cfg: StudioConfig,
    paths: Any,
    out: str,
    model: str | None = None,
    temperature: float | None = None,
    progress=None,
    restart: bool = False,
):
    """Teacher scores for one file (default teacher: the config's model); re-running resumes
    an output scored from the same input and settings (another is refused), ``restart`` starts
    it again. A datawork.score ScoreResult."""
    from studio.datawork import score

    cfg = _resolved(ws, cfg)
    source = one_data_file(ws, cfg, paths, "Scoring")
    teacher = model or cfg.get("model_name_or_path") or ""
    scorer = score.make_scorer(teacher, cfg, ws.base_dir, temperature)
    return score.score_file(source, ws.path(out), scorer, progress=progress, restart=restart)


def _documents(ws: Workspace, corpus: str) -> Path:
    """The documents a user named for `data pairs` or `adapt`; ValueError when none was."""
    if not str(corpus or "").strip():
        raise ValueError("give the documents: a BEIR corpus.jsonl or a folder of .txt/.md files")
    return ws.path(corpus)


def make_pairs(
    ws: Workspace,
    corpus: str,
    out: str,
    method: str = "title",
    base_url: str = "",
    model: str = "",
    questions: int = 1,
    force: bool = False,
    progress=None,
):
    """Training pairs from documents (``data pairs``): ``title`` or ``crop`` at once, ``llm``
    streamed and resumable (the key from $OPENAI_API_KEY). A datawork.pairs PairsResult."""
    from studio.datawork import llm_pairs, pairs

    source, target = _documents(ws, corpus), ws.path(out)
    if method != "llm":
        return pairs.make_pairs(source, target, method, force=bool(force))
    if not str(model or "").strip():
        raise ValueError("LLM pairs need a model: its name at the endpoint, or a model folder")
    settings = llm_pairs.LLMSettings(
        model=str(ws.path(model)) if not base_url else model,
        base_url=base_url or None,
        questions_per_doc=int(questions or 1),
    )
    report = (lambda done, total, eta: progress("pairs", done, total)) if progress else None
    return llm_pairs.llm_pairs(source, target, settings, restart=bool(force), progress=report)


def adapt(
    ws: Workspace,
    corpus: str,
    out: str = "adapt",
    method: str = "title",
    model: str = "bundled:all-MiniLM-L6-v2",
    max_steps: int = 150,
    restart: bool = False,
    say=None,
):
    """Documents -> pairs -> split by document -> mined negatives -> a run scored at every
    save -> merges with the base -> the best exported (studio.app.adapt.adapt)."""
    from studio.app import adapt as flow

    return flow.adapt(
        _documents(ws, corpus),
        ws.path(out or "adapt"),
        method,
        model=model or "bundled:all-MiniLM-L6-v2",
        max_steps=int(max_steps or 150),
        base_dir=ws.base_dir,
        restart=bool(restart),
        say=say,
    )


# ---------------------------------------------------------------------------- evaluation


def eval_data(ws: Workspace, text: str | Path | None, cfg: StudioConfig | None = None) -> Path:
    """The evaluation folder: the one given, else the config's studio.eval_data, else
    example_data/eval; FileNotFoundError names the folder looked for."""
    from_config = not text and cfg is not None and cfg.studio.get("eval_data")
    if from_config:  # the config's own path is read from its base, as the run reads it
        path = (
            config_mod.base_of(cfg, ws.base_dir) / Path(str(from_config)).expanduser()
        ).resolve()
    else:
        path = ws.path(text or DEFAULT_EVAL_DATA).resolve()
    if not path.is_dir():
        raise FileNotFoundError(f"no evaluation folder {path}")
    return path


def cutoffs(ks: str | Sequence[int]) -> list[int]:
    """The k values a user typed ("1,5,10" or "1 5 10") or passed: the core's parser."""
    from studio.evaluation.metrics import parse_ks

    return parse_ks(ks)


def evaluate_run(
    ws: Workspace,
    run: str | Path,
    data: str | Path | None = None,
    ks: str | Sequence[int] = (1, 5, 10, 100),
    retriever: str | None = None,
    include_checkpoints: bool = False,
    inside: bool = False,
    form: StudioConfig | None = None,
) -> dict[str, Any]:
    """Before/after for a run (base, final, optionally checkpoints) -> its eval.json. Default
    data: the run config's studio.eval_data, else the form's (`form`), else example_data/eval."""
    from studio.training.run_eval import evaluate_run as run_eval

    run_dir = find_run(ws, run, inside)
    folder = None
    if data or not runs.load_run_config(run_dir).studio.get("eval_data"):
        folder = eval_data(ws, data, form)
    return run_eval(
        run_dir,
        folder,
        ks=cutoffs(ks),
        include_checkpoints=include_checkpoints,
        retriever=_model(ws, retriever),
    )


def compare_models(
    ws: Workspace,
    cfg: StudioConfig,
    baseline: str,
    model: str,
    data: str | Path | None = None,
    ks: str | Sequence[int] = (1, 5, 10, 100),
    retriever: str | None = None,
) -> dict[str, Any]:
    """Any two models on held-out data with the config's pooling, instructions and lengths."""
    from studio.evaluation.module_eval import compare_models as compare

    if not str(model or "").strip():
        raise ValueError("Give the fine-tuned model's folder (a run's model/ or a checkpoint).")
    return compare(
        baseline,
        model,
        eval_data(ws, data, cfg),
        cfg,
        cutoffs(ks),
        ws.base_dir,
        retriever=_model(ws, retriever),
    )


def _model(ws: Workspace, text: str | Path | None) -> str | None:
    from studio.core.config import resolve_model

    text = str(text or "").strip()
    return resolve_model(text, ws.base_dir) if text else None


@dataclass
class EvalView:
    """What an evaluation shows: a summary (Markdown), the metrics table, the bar chart, the
    per-query wins and losses, and metrics over steps (None without checkpoints)."""

    summary: str
    table: Any
    chart: Any
    per_query: Any
    steps: Any


def eval_view(report: dict[str, Any], data: str | None = None) -> EvalView:
    from studio.app import views
    from studio.evaluation.module_eval import summary_line
    from studio.evaluation.present import report_notes, results_view

    table, chart, per_query, steps = results_view(report, data)
    line = summary_line(report)
    text = f"**{views.escape(line)}**" if line else ""
    notes = "\n".join(f"- {views.prose(w)}" for w in report_notes(report))
    if notes:
        text += ("\n\n" if text else "") + notes
    return EvalView(text, table, chart, per_query, steps)


def merge(
    ws: Workspace,
    cfg: StudioConfig,
    model: str,
    base: str = "bundled:all-MiniLM-L6-v2",
    weights: str | Sequence[float] = "0,0.5,1",
    data: str | Path | None = None,
    general_data: str | Path | None = None,
    out: str | Path = "merges",
    ks: str | Sequence[int] = (1, 5, 10, 100),
):
    """LM-Cocktail mixes of `model` and `base`, each evaluated (a MergeReport)."""
    from studio.evaluation import merge as merging

    if not str(model or "").strip():
        raise ValueError("Give the fine-tuned model's folder (a run's model/ or a checkpoint).")
    return merging.sweep(
        base,
        model,
        merging.parse_weights(weights if isinstance(weights, str) else list(weights)),
        eval_data(ws, data, cfg),
        ws.path(out or "merges"),
        general_data=eval_data(ws, general_data) if general_data else None,
        config=cfg,
        ks=cutoffs(ks),
    )


def export_merge(ws: Workspace, report, dest: str | Path) -> Path:
    """The best mix of a merge sweep, saved as a model folder (never over an existing one)."""
    from studio.evaluation import merge as merging

    if report is None or not str(dest or "").strip():
        raise ValueError("Merge first, then give a new folder to export the best mix to.")
    return merging.export_mix(report, ws.path(dest))


def export_run(ws: Workspace, run: str | Path, pick: str | None = None) -> dict[str, Any]:
    """Export a run's best model by held-out nDCG@10 (or `pick`: a checkpoint step, base or
    final) to RUN/exported; the choice (studio.best_model) is recorded in its eval.json."""
    from studio.training.best_model import export_choice
    from studio.training.run_eval import read_run_eval

    run_dir = find_run(ws, run)
    report = read_run_eval(run_dir)
    if not report or not report.get("models"):
        raise ValueError(
            f"run {run_dir.name} has no evaluation to choose from. Fix: evaluate it first: "
            f"`python -m studio eval --run {run_dir}`"
        )
    return export_choice(run_dir, report, pick)


def estimate_memory(ws: Workspace, cfg: StudioConfig, device=None):
    """Peak memory per device of the config (studio.memory.Estimate)."""
    from studio.checks import memory

    return memory.estimate(cfg, ws.base_dir, device=device)
