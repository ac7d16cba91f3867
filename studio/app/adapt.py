"""From a folder of documents to a model that is better, and proof that it is: ``studio adapt``.

One flow over the studio's own steps, each writing into one folder (``OUT/adapt-NAME/``) and
reused when run again, so a stopped flow resumes where it was:

1. ``pairs``       training pairs from the documents (``data pairs``: title, crop or llm);
2. ``split``       whole documents held out (``datawork.doc_split``): their pairs are the held-out
                   queries, every document is the corpus, so no document leaks into training;
3. ``mine``        hard negatives from the training documents, without false negatives (a
                   candidate scoring >= 95% of the positive) or the row's own document;
4. ``difficulty``  how hard those negatives are (too easy: the loss will go to ~0);
5. ``train``       a run with ``studio: {eval_at_save: true}``: held-out nDCG@10 at every save,
                   and the best of base, checkpoints and final exported by the run;
6. ``merge``       LM-Cocktail mixes of that model with the base (weights 0 = the base .. 1 =
                   the run's pick), each scored on the held-out split;
7. ``export``      the best of all of them, copied to ``OUT/adapt-NAME/exported``.

The verdict says plainly when nothing beat the base (the base is then what is exported) and the
table says what each candidate scored, so the choice can be checked, not trusted.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from studio.facts.problems import ERROR, Problem

MERGE_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
METRIC = "ndcg_at_10"
Say = Callable[[str], None]


@dataclass
class Step:
    name: str
    summary: dict[str, Any]
    problems: list[Problem] = field(default_factory=list)
    reused: bool = False


@dataclass
class AdaptResult:
    folder: Path
    steps: list[Step] = field(default_factory=list)
    run_dir: Path | None = None
    candidates: list[dict[str, Any]] = field(default_factory=list)  # model, score, chosen
    exported: Path | None = None
    chosen: str = ""
    base_score: float | None = None
    chosen_score: float | None = None

    @property
    def beat_base(self) -> bool:
        return (
            self.base_score is not None
            and self.chosen_score is not None
            and self.chosen_score > self.base_score
        )

    def verdict(self) -> str:
        """One sentence: better than the base by how much, or not, plainly."""
        if self.chosen_score is None or self.base_score is None:
            return "no held-out score: nothing was chosen"
        delta = self.chosen_score - self.base_score
        if self.beat_base:
            return (
                f"{self.chosen} scores held-out nDCG@10 {self.chosen_score:.4f}, "
                f"{delta:+.4f} over the base ({self.base_score:.4f})"
            )
        return (
            f"nothing beat the base model on the held-out split (base nDCG@10 "
            f"{self.base_score:.4f}; best fine-tuned or merged {self._best_other():.4f}): the "
            "base is what is exported. Try more or better pairs (`--from llm`), fewer steps, or "
            "harder negatives"
        )

    def _best_other(self) -> float:
        others = [c["score"] for c in self.candidates if c["model"] != "base"]
        return max(others) if others else float("nan")

    def table(self) -> list[dict[str, Any]]:
        return [
            {
                "model": c["model"],
                "held-out nDCG@10": round(c["score"], 4),
                "chosen": "✓" if c["chosen"] else "",
            }
            for c in self.candidates
        ]

    def lines(self) -> list[str]:
        """What every face prints last: the table, the verdict, then ``exported: PATH``."""
        out = [f"{'model':28} {'held-out nDCG@10':>16}  chosen"]
        out += [
            f"{row['model']:28} {row['held-out nDCG@10']:>16.4f}  {row['chosen']}"
            for row in self.table()
        ]
        out.append(("" if self.beat_base else "warning: ") + self.verdict())
        if self.exported is not None:
            out.append(f"exported: {self.exported}")
        return out


class AdaptError(RuntimeError):
    """A step failed; the message names the step, the file and the fix."""


def _slug(corpus: Path) -> str:
    name = corpus.stem if corpus.is_file() else corpus.name
    if name == "corpus" and corpus.is_file():
        name = corpus.parent.name
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "corpus"


def _settings_guard(folder: Path, settings: dict[str, Any], restart: bool) -> None:
    """A folder belongs to one corpus and one set of settings: another is refused, not mixed."""
    record = folder / "adapt.json"
    if restart and folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if record.is_file():
        before = json.loads(record.read_text())
        changed = sorted(k for k in settings if before.get(k) != settings[k])
        if changed:
            raise AdaptError(
                f"{folder} holds a flow with other settings ({', '.join(changed)}); resuming "
                "would mix them. Fix: pass --restart to start over, or give another --out"
            )
    record.write_text(json.dumps(settings, indent=1))


def adapt(
    corpus: str | Path,
    out_dir: str | Path,
    method: str = "title",
    *,
    model: str = "bundled:all-MiniLM-L6-v2",
    max_steps: int = 150,
    heldout: int | None = None,
    base_config=None,
    base_dir: str | Path = ".",
    llm=None,
    restart: bool = False,
    merge_weights: tuple[float, ...] = MERGE_WEIGHTS,
    say: Say | None = None,
) -> AdaptResult:
    """Run (or resume) the whole flow; ``say`` hears one line per step as it goes."""
    from studio.datawork import doc_split, mining, pairs

    corpus, out_dir = Path(corpus).resolve(), Path(out_dir).resolve()
    say = say or (lambda line: None)
    folder = out_dir / f"adapt-{_slug(corpus)}"
    settings = {
        "corpus": str(corpus),
        "method": method,
        "model": model,
        "max_steps": int(max_steps),
        "heldout": heldout,
    }
    _settings_guard(folder, settings, restart)
    result = AdaptResult(folder)

    # 1. pairs
    pairs_path = folder / "pairs.jsonl"
    if method == "llm":
        from studio.datawork import llm_pairs

        if llm is None:
            raise AdaptError("--from llm needs --model-llm (and --base-url for an endpoint)")
        made = llm_pairs.llm_pairs(corpus, pairs_path, llm)
        _step(result, "pairs", made.summary(), made.problems, say, made.resumed > 0)
    elif pairs_path.exists():
        _step(result, "pairs", {"file": str(pairs_path)}, [], say, reused=True)
    else:
        made = pairs.make_pairs(corpus, pairs_path, method)
        _step(result, "pairs", made.summary(), made.problems, say)

    # 2. split by document
    split_dir = folder / "split"
    if (split_dir / "train.jsonl").exists():
        _step(result, "split", {"folder": str(split_dir)}, [], say, reused=True)
    else:
        with_pairs = {json.loads(line)["doc_id"] for line in pairs_path.open() if line.strip()}
        n = heldout or max(1, min(200, len(with_pairs) // 5))
        try:
            split = doc_split.split_by_document(pairs_path, corpus, split_dir, n)
        except ValueError as exc:
            raise AdaptError(f"split: {exc}") from None
        _step(result, "split", split.summary(), split.problems, say)
    train_rows, eval_dir = split_dir / "train.jsonl", split_dir / "eval"

    # 3. mine, with the false-negative filter and never a row's own document
    mined = folder / "mined.jsonl"
    if mined.exists():
        _step(result, "mine", {"file": str(mined)}, [], say, reused=True)
    else:
        cfg = _config(base_config, model, train_rows, eval_dir, max_steps)
        done = mining.mine(
            train_rows,
            mined,
            None,
            range_from=2,
            range_to=50,
            n=7,
            config=cfg,
            base_dir=base_dir,
            max_neg_ratio=0.95,
        )
        summary = {
            k: v
            for k, v in done.summary().items()
            if k in ("rows", "rows_mined", "negatives_added", "false_negatives_filtered")
        }
        _step(result, "mine", summary, done.problems, say)

    cfg = _config(base_config, model, mined, eval_dir, max_steps)

    # 4. how hard the negatives are (said, not blocking: the held-out choice guards the outcome)
    from studio.datawork import difficulty

    report = difficulty.for_config([mined], cfg, base_dir, sample_size=300)
    _step(result, "difficulty", report.summary(), report.problems, say)

    # 5. train with held-out evaluation at every save; the run exports its best model
    run_dir, reused = _train(cfg, folder, base_dir, say)
    result.run_dir = run_dir
    run_pick = run_dir / "exported"
    if not run_pick.is_dir():
        raise AdaptError(
            f"train: the run {run_dir} exported no model (see its status and train.log); "
            f"resume it with `python -m studio resume {run_dir}`, then run adapt again"
        )
    choice = _run_choice(run_dir)
    picked = f"{choice['label']} ({choice['score']:.4f})"
    _step(result, "train", {"run": str(run_dir), "run's pick": picked}, [], say, reused)

    # 6. mixes of the run's pick with the base, each scored on the held-out split
    merge_report = _merges(model, run_pick, eval_dir, folder, cfg, say, result, merge_weights)

    # 7. the best of everything: the run's candidates and the mixes
    candidates = [
        {"model": row["label"], "score": row["score"], "path": row["path"], "chosen": False}
        for row in choice.get("rows", [])
        if isinstance(row.get("score"), int | float)
    ]
    for mix in merge_report.mixes:
        if 0 < mix.weight < 1:
            candidates.append(
                {
                    "model": f"merge w={mix.weight:.2f} with base",
                    "score": mix.metrics.get(METRIC),
                    "path": mix.path,
                    "chosen": False,
                }
            )
    base = next((c for c in candidates if c["model"] == "base"), None)
    best = max(candidates, key=lambda c: (c["score"], c["model"] != "base"))
    best["chosen"] = True
    result.candidates = candidates
    result.chosen, result.chosen_score = best["model"], best["score"]
    result.base_score = base["score"] if base else None
    dest = folder / "exported"
    staging = folder / "exported.partial"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(best["path"], staging)
    shutil.rmtree(dest, ignore_errors=True)
    staging.rename(dest)
    result.exported = dest
    (folder / "choice.json").write_text(
        json.dumps(
            {"candidates": candidates, "chosen": best["model"], "verdict": result.verdict()},
            indent=1,
        )
    )
    _step(result, "export", {"chosen": best["model"], "exported": str(dest)}, [], say)
    return result


def _config(base_config, model: str, train: Path, eval_dir: Path, max_steps: int):
    """The quickstart's settings with this flow's data, model and steps, held-out scored at every
    save (about five saves per run)."""
    from studio.core.config import default_config

    cfg = base_config or default_config(None)
    save = max(1, int(max_steps) // 5)
    cfg = cfg.with_args(
        model_name_or_path=model,
        train_data=[str(train)],
        max_steps=int(max_steps),
        save_steps=save,
        logging_steps=max(1, min(10, save)),
    )
    studio = {**cfg.studio, "eval_data": str(eval_dir), "eval_at_save": True}
    studio["evaluate_at_end"] = True
    return replace(cfg, studio=studio)


def _train(cfg, folder: Path, base_dir, say: Say) -> tuple[Path, bool]:
    """Start the run (or reuse the one this folder finished), wait, and insist it succeeded."""
    from studio.facts.runfolder import RunState, state_of
    from studio.training import runs

    runs_dir = folder / "runs"
    done = [r for r in runs.list_runs(runs_dir) if r.state == RunState.SUCCEEDED.value]
    if done:
        return done[0].path, True
    try:
        run_dir = runs.start(cfg, runs_dir, base_dir, name="adapt")
    except runs.PreflightFailed as exc:
        lines = "; ".join(str(p) for p in exc.problems)
        raise AdaptError(f"train: pre-flight refused the run: {lines}") from None
    say(f"training    {run_dir} (held-out nDCG@10 at every save; watch: python -m studio runs)")
    status = runs.wait(run_dir)
    if state_of(status) is not RunState.SUCCEEDED:
        raise AdaptError(
            f"train: the run {run_dir} {status.get('state')}: {status.get('error') or ''} "
            f"(fix it, then `python -m studio resume {run_dir}` and run adapt again)"
        )
    return run_dir, False


def _run_choice(run_dir: Path) -> dict[str, Any]:
    from studio.facts.runfolder import RunFolder

    report = json.loads(RunFolder(run_dir).eval.read_text())
    choice = report.get("choice")
    if not choice:
        raise AdaptError(f"train: {run_dir}/eval.json has no choice of the best model")
    return choice


def _merges(model, run_pick, eval_dir, folder, cfg, say, result, weights):
    from studio.evaluation import merge as merging

    out = folder / "merges"
    record = out / "merge.json"
    if record.is_file():
        data = json.loads(record.read_text())
        mixes = [merging.Mix(**m) for m in data.pop("mixes")]
        report = merging.MergeReport(**data, mixes=mixes)
        _step(result, "merge", {"weights": [m.weight for m in mixes]}, [], say, reused=True)
        return report
    report = merging.sweep(model, run_pick, list(weights), eval_dir, out, config=cfg)
    record.write_text(json.dumps(report.to_dict(), indent=1))
    summary = {
        f"w={m.weight:.2f}": round(m.metrics.get(METRIC, float("nan")), 4) for m in report.mixes
    }
    problems = [Problem(ERROR, w, "") for w in report.warnings if "error" in w.lower()]
    _step(result, "merge", summary, problems, say)
    return report


def _step(result: AdaptResult, name: str, summary, problems, say: Say, reused=False) -> None:
    result.steps.append(Step(name, dict(summary), list(problems), reused))
    head = f"{name:11} " + ("reused " if reused else "")
    say(head + ", ".join(f"{k} {v}" for k, v in dict(summary).items()))
    for p in problems:
        say(f"            {p}")
