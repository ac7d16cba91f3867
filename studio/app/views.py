"""What the studio says about a run, its status and a list of problems: one text for every face.

Each function returns Markdown. The web UI shows it as is (``gr.Markdown``); the notebook shows
the same text turned into HTML by :func:`to_html` (markdown-it with raw HTML off, so a path, a
log line or an error message cannot inject markup). The wording, the icons and the choice of
what to mention (the exit code of a failed run only, the scheduler's reason, the phase before the
first step, loss warnings) are decided here once, so the faces cannot drift apart again: they did
when each wrote its own copy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from studio.facts.problems import Problem
from studio.facts.runfolder import RunState, phase_text, state_of

NO_PROBLEMS = "✅ No problems found."
NO_RUN = "No run is being watched."
LEVEL_ICONS = {"error": "❌", "warning": "⚠️", "info": "ℹ️"}
STATE_ICONS = {
    RunState.QUEUED: "⏳",
    RunState.RUNNING: "🟢",
    RunState.SUCCEEDED: "✅",
    RunState.FAILED: "❌",
    RunState.STOPPED: "⏹",
}
# The Markdown characters that would turn a run name, a path or a message into formatting or
# markup. `_` is left alone: CommonMark does not emphasise inside a word (train_group_size).
_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*[]<>|"})


def escape(text: Any) -> str:
    """Text shown literally inside Markdown."""
    return str(text).translate(_SPECIAL)


def prose(text: Any) -> str:
    """A message the studio wrote (a problem, a fix, a warning): `backticks` stay code, as its
    authors meant, and everything else that would be markup is shown literally."""
    parts = str(text).split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick: nothing is code
        return escape(text)
    return "`".join(part if i % 2 else escape(part) for i, part in enumerate(parts))


def code(text: Any) -> str:
    """Inline code that holds any backticks the text has."""
    text = str(text)
    fence = "`"
    while fence in text:
        fence += "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def block(text: str) -> str:
    """A fenced block (a log tail, a config) that no line of the text can close early."""
    fence = "```"
    while fence in text:
        fence += "`"
    return f"{fence}\n{text.rstrip()}\n{fence}"


def problem_line(p: Problem) -> str:
    where = f" {code(p.where())}" if p.where() else ""
    fix = f" — *{prose(p.fix)}*" if p.fix else ""
    return f"{LEVEL_ICONS.get(p.level, '')} **{p.level}**{where}: {prose(p.message)}{fix}"


def problems_text(problems: Iterable[Problem], empty: str = NO_PROBLEMS) -> str:
    """A list of problems, one line each: level, where (file:line field), message and fix."""
    lines = [f"- {problem_line(p)}" for p in problems]
    return "\n".join(lines) if lines else empty


PROBLEM_COLUMNS = ("level", "file", "line", "field", "message", "fix")


def problem_rows(problems: Iterable[Problem], columns=PROBLEM_COLUMNS) -> list[list]:
    """Problems as table rows (a Dataframe's), one column per Problem attribute named."""
    return [[getattr(p, c) or "" for c in columns] for p in problems]


# status.json fields post_train writes when a step after training failed: (field, what failed,
# the fix). Training itself succeeded and its model is saved; the step did not happen.
AFTER_TRAINING = (
    (
        "eval_error",
        "the evaluation after training failed",
        "The trained model is saved; fix the cause, then evaluate it with "
        "`python -m studio eval --run {run}`.",
    ),
    (
        "export_error",
        "the export after training (sentence-transformers files, model card) failed",
        "The trained model is saved; fix the cause and run the run's export again.",
    ),
)


def after_training_failures(run_dir: Path, status: Mapping[str, Any] | None) -> list[str]:
    """What failed after a finished training (the evaluation, the export), one plain line each
    with its fix: the CLI prints them at the end (and exits non-zero), status_text shows them."""
    status = status or {}
    return [
        f"{what}: {status[name]} Fix: {fix.format(run=run_dir)}"
        for name, what, fix in AFTER_TRAINING
        if status.get(name)
    ]


def status_text(run_dir: Path | None, status: Mapping[str, Any] | None, note: str = "") -> str:
    """The watched run in a few lines: name, state (and the scheduler's reason), its phase,
    the exit code when it failed, the error line and log tail of this attempt, loss warnings,
    and the steps the fp16 loss scaler skipped (counted, so that they read as normal)."""
    from studio.training import loss_health

    if run_dir is None:
        return escape(note or NO_RUN)
    status = dict(status or {})
    state = state_of(status)
    text = f"{STATE_ICONS.get(state, '')} **{escape(Path(run_dir).name)}** — {state}"
    if status.get("reason"):  # the scheduler's word: Slurm's Resources, Priority...
        text += f" ({escape(status['reason'])})"
    phase = phase_text(status)
    if phase:
        text += f" · {escape(phase)}"
    if state is RunState.FAILED and status.get("exit_code") not in (None, 0):
        text += f" (exit code {status['exit_code']})"
    if status.get("error"):
        text += f"\n\n**Error:** {code(status['error'])}"
    if status.get("log_tail"):
        text += "\n\nLast lines of this attempt's log:\n\n" + block(str(status["log_tail"]))
    for failure in after_training_failures(Path(run_dir), status):
        text += f"\n\n❌ {prose(failure)}"
    for warning in loss_health.warning_lines(Path(run_dir)):
        text += f"\n\n⚠️ {prose(warning)}"
    skips = loss_health.skip_line(Path(run_dir))
    if skips:
        text += f"\n\n{LEVEL_ICONS['info']} {prose(skips)}"
    if note:
        text += f"\n\n{escape(note)}"
    return text


def phase_before_first_step(info: Mapping[str, Any], status: Mapping[str, Any] | None) -> bool:
    """Whether the progress line says what the run is doing instead of its step count."""
    return bool(phase_text(dict(status or {}))) and not info.get("step")


def progress_text(info: Mapping[str, Any], status: Mapping[str, Any] | None = None) -> str:
    """'step **4**/12 · elapsed 40s · ETA 80s' (studio.charts.progress); before the first step,
    what the run is doing ('building DeepSpeed op fused_adam · 42s since start')."""
    if phase_before_first_step(info, status):
        return escape(phase_text(dict(status or {})))
    eta = info.get("eta_s")
    eta_text = f"{eta:.0f}s" if isinstance(eta, int | float) else "–"
    return (
        f"step **{info['step']}**/{info['total'] or '?'} · elapsed "
        f"{info['elapsed_s']:.0f}s · ETA {eta_text}"
    )


def table_text(frame: Any, floats: str = "{:.4f}") -> str:
    """A DataFrame (index included when named) or a list of dicts as a Markdown table."""
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        frame = pd.DataFrame(frame)
    if frame.index.name:
        frame = frame.reset_index()
    if frame.empty:
        return ""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return "–" if value != value else floats.format(value)
        return escape(value).replace("\n", " ")

    head = "| " + " | ".join(escape(c) for c in frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *rows])


def run_summary(run_dir: Path, status: Mapping[str, Any] | None, report: Any = None) -> str:
    """A run as the Runs tab shows it: the status text, then its evaluation (base against the
    final model, and each mode's scores) when eval.json has one."""
    text = status_text(run_dir, status)
    if report is False:
        return text + "\n\n*eval.json is not readable.*"
    if report and report.get("models"):
        from studio.evaluation.present import comparison_table

        text += "\n\n**Evaluation**\n\n" + table_text(comparison_table(report))
        text += outcome_text(run_dir, report)
    return text


def outcome_text(run_dir: Path, report: Mapping[str, Any]) -> str:
    """The export choice (studio.eval_at_save) as a table, and what the outcome means: a
    fine-tuned model below the base is said plainly, with the merge command."""
    from studio.training.best_model import below_base, choice_rows, outcome_lines

    text = ""
    choice = report.get("choice")
    if choice and choice.get("rows"):
        text += "\n\n**Which model is exported**\n\n" + table_text(choice_rows(choice))
    warn = (
        below_base(dict(report))
        or below_base(dict(report), where="general")
        or (choice or {}).get("label") == "base"
    )
    for line in outcome_lines(run_dir, dict(report)):
        icon = "⚠️" if warn and not line.startswith("exported:") else "📦"
        text += f"\n\n{icon} {prose(line)}"
    return text


def export_text(result) -> str:
    """A cluster export (studio.cluster.export.ExportResult): what was written, and why not."""
    return f"**{escape(result.summary())}**\n\n" + problems_text(result.problems)


def check_headline(report) -> str:
    """The data check's first line (a studio.datawork.check report)."""
    return (
        f"**{report.rows:,} rows** in {len(report.files)} file(s): "
        f"**{report.error_count} error(s)**, {report.warning_count} warning(s)."
    )


def facts_text(facts: Mapping[str, Any]) -> str:
    """A result's summary (name -> value) as a list; nested values are left to tables."""
    return "\n".join(
        f"- **{escape(k)}**: {escape(v)}"
        for k, v in facts.items()
        if not isinstance(v, dict | list)
    )


def failure_text(exc: BaseException) -> str:
    """Why an action failed: the core's problems when it carries them (each with its fix),
    else its message."""
    problems = getattr(exc, "problems", None)
    if problems:
        return problems_text(list(problems))
    from studio.facts.statusfile import disk_full, disk_full_reason

    if disk_full(exc):  # the same words as a run's reason and the CLI's error line
        return f"❌ {prose(disk_full_reason(exc.filename, exc.errno))}"
    return f"❌ {prose(exc)}"


def memory_text(est) -> str:
    """A memory estimate (studio.memory.Estimate): the verdict, the parts, and the cheapest
    changes that make it fit."""
    from studio.checks.memory import fmt_bytes, nvidia_smi_line

    if est.fits is None:
        verdict = ""
    elif est.tight:
        verdict = f"⚠️ {est.verdict()}: {fmt_bytes(est.headroom_bytes)} to spare"
    elif est.fits:
        verdict = f"✅ fits, {fmt_bytes(est.headroom_bytes)} to spare"
    else:
        verdict = f"❌ does not fit: {fmt_bytes(-est.headroom_bytes)} short"
    lines = [
        f"**Peak per device: {fmt_bytes(est.peak_bytes)}** on {escape(est.device)} "
        f"({fmt_bytes(est.device_bytes)}) — {verdict}",
        *([] if est.nvidia_smi_bytes is None else ["", prose(nvidia_smi_line(est))]),
        "",
        "| part | size |",
        "| --- | ---: |",
        *(f"| {escape(name)} | {fmt_bytes(value)} |" for name, value in est.parts.items()),
    ]
    if est.cpu_bytes:
        lines.append(f"| offloaded to CPU | {fmt_bytes(est.cpu_bytes)} |")
    if est.changes:
        lines += ["", "**Cheapest changes that make it fit with room to spare:**"]
        lines += [f"- {prose(c.label)} → {fmt_bytes(c.peak_bytes)}" for c in est.changes]
    lines += ["", *(f"*{prose(note)}*" for note in est.notes)]
    return "\n".join(lines)


def to_html(markdown: str) -> str:
    """The notebook's rendering of one of these texts (raw HTML in it is shown, not run)."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)


def inline_html(markdown: str) -> str:
    """One line of these texts as HTML without its paragraph (a label beside a bar)."""
    return to_html(markdown).strip().removeprefix("<p>").removesuffix("</p>")


def plain(markup: str) -> str:
    """The words a reader sees in rendered HTML: tags dropped, entities decoded, spaces folded.
    How a test compares what two faces show."""
    import html
    import re

    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


def difficulty_text(result) -> str:
    """The difficulty report: its facts, then what it flags (nothing flagged is said too)."""
    body = facts_text(result.summary())
    if result.problems:
        return body + "\n\n" + problems_text(result.problems)
    return body + "\n\nNeither too easy nor copies of the positive: no flag."


def adapt_text(result) -> str:
    """The end of an adapt flow: the candidates' table, the verdict (a plain warning when
    nothing beat the base), and the exported folder."""
    rows = result.table()
    table = "| model | held-out nDCG@10 | chosen |\n| --- | --- | --- |\n" + "".join(
        f"| {escape(r['model'])} | {r['held-out nDCG@10']:.4f} | {r['chosen']} |\n" for r in rows
    )
    verdict = result.verdict()
    head = verdict if result.beat_base else f"⚠️ **{escape(verdict)}**"
    tail = f"\n\nexported: `{result.exported}`" if result.exported else ""
    return f"{table}\n{head}{tail}"
