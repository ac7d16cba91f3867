"""Teacher scores for knowledge distillation: add ``pos_scores``/``neg_scores`` to training rows.

FlagEmbedding distils when ``knowledge_distillation`` is on and every row carries one score per
positive and negative; its own ``scripts/add_reranker_score.py`` reads the whole file into
memory, scores it in one go with a reranker and writes the result, so a crash at 90% loses it
all. Here the file is streamed in batches of rows, each batch is written (and flushed) as soon as
it is scored, and re-running the same command continues after the last complete line of the
output (a half-written last line is cut off first). The input is never written to.

The scoring model is

* a **cross-encoder reranker** (a ``config.json`` whose architecture is
  ``...ForSequenceClassification``): the logit of (query, passage), as ``add_reranker_score.py``;
* otherwise an **embedder**: the similarity of the query's and the passage's embeddings from the
  studio's one encoder (:class:`studio.evaluation.encoder.Encoder`, with the config's pooling,
  instructions and lengths, else the model's sentence-transformers settings), divided by ``temperature``. FlagEmbedding turns teacher scores into targets
  with ``softmax(scores)`` and no temperature, so raw cosines in [-1, 1] would give an almost
  uniform (useless) target; dividing by the training temperature (default 0.02) gives the
  target the student's own loss would produce.

Output line ``i`` is input row ``i`` (blank lines are dropped; a line that is not a usable row is
copied as is and reported), so resuming needs only the count of lines already written. That count
is trusted only for the input it was made from: a sidecar ``<out>.score-resume`` (not ``.json``,
so a folder of training data never reads it as rows) records a fingerprint of the input's rows and
of the scorer's settings, and every line already written is checked against its input row before
any new one is added. Another input, other settings, or an output whose lines are not the input's
rows is refused with the fix (start again with ``restart``, or write to a new file), never
appended to.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.core.config import StudioConfig, resolve_model
from studio.datawork.rows import BOM
from studio.facts.problems import WARNING, Problem

Progress = Callable[[str, int, int], None]
ROWS_PER_BATCH = 32
DEFAULT_TEMPERATURE = 0.02


@dataclass
class ScoreResult:
    out_path: Path
    scorer: str  # "reranker" or "embedder"
    rows_written: int  # rows scored by this call
    rows_resumed: int  # rows already in the output when it started
    lines_copied: int  # lines that could not be scored, copied unchanged
    seconds: float
    problems: list[Problem] = field(default_factory=list)

    def kd_settings(self) -> dict[str, Any]:
        """The config values that train on the scored file with distillation."""
        return kd_settings(self.out_path)

    def summary(self) -> dict[str, Any]:
        return {
            "out_path": str(self.out_path),
            "scorer": self.scorer,
            "rows_written": self.rows_written,
            "rows_resumed": self.rows_resumed,
            "lines_copied": self.lines_copied,
            "seconds": round(self.seconds, 2),
        }


def kd_settings(out_path: str | Path) -> dict[str, Any]:
    """``knowledge_distillation`` + ``kd_loss_type`` (FlagEmbedding's flags) and the new data."""
    return {
        "train_data": [str(out_path)],
        "knowledge_distillation": True,
        "kd_loss_type": "kl_div",  # a module may use its own (its `kd_loss`, studio.modules)
    }


def kd_settings_text(out_path: str | Path) -> str:
    """The settings as the YAML lines to put in a config, for faces to show."""
    from studio.facts import modules

    values = kd_settings(out_path)
    own = "; ".join(
        f"{m.kd_loss} when fine-tuning {m.title}" for m in modules.MODULES.values() if m.kd_loss
    )
    return (
        f"train_data: [{values['train_data'][0]}]\n"
        "knowledge_distillation: true\n"
        f"kd_loss_type: kl_div{f'   # {own}' if own else ''}\n"
    )


def is_reranker(model_dir: str | Path) -> bool:
    """A cross-encoder: its config.json names a sequence-classification architecture."""
    try:
        cfg = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return any(a.endswith("ForSequenceClassification") for a in cfg.get("architectures") or [])


class RerankerScorer:
    """(query, passage) logits of a cross-encoder, as FlagEmbedding's reranker computes them."""

    kind = "reranker"

    def __init__(self, model_dir: str | Path, max_length: int = 512, device: str | None = None):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        self.model = AutoModelForSequenceClassification.from_pretrained(str(model_dir))
        self.model.to(self.device).eval()
        self.max_length = max_length
        self.settings_record = {
            "scorer": self.kind,
            "model": str(Path(model_dir).resolve()),
            "max_length": max_length,
        }

    def score(self, pairs: list[tuple[str, str]]) -> list[float]:
        import torch

        out: list[float] = []
        with torch.inference_mode():
            for start in range(0, len(pairs), 64):
                chunk = pairs[start : start + 64]
                batch = self.tokenizer(
                    [q for q, _ in chunk],
                    [p for _, p in chunk],
                    truncation=True,
                    max_length=self.max_length,
                    padding=True,
                    return_tensors="pt",
                ).to(self.device)
                logits = self.model(**batch).logits
                out += logits[:, 0].float().cpu().tolist()
        return out


class EmbedderScorer:
    """Embedding similarity / temperature, with the config's pooling and instructions."""

    kind = "embedder"

    def __init__(
        self,
        model: str | Path,
        config: StudioConfig | None = None,
        temperature: float | None = None,
        base_dir: str | Path = ".",
    ):
        from studio.evaluation.encoder import Encoder
        from studio.evaluation.settings import (
            EncodeSettings,
            settings_for_model,
            settings_from_config,
        )

        if config is not None:
            settings = settings_from_config(config)
        else:
            try:
                settings = settings_for_model(resolve_model(str(model), Path(base_dir)))
            except (OSError, ValueError):
                settings = EncodeSettings()
        self.settings = settings
        self.temperature = float(
            temperature
            or (config.get("temperature") if config is not None else None)
            or DEFAULT_TEMPERATURE
        )
        folder = resolve_model(str(model), Path(base_dir))
        self.encoder = Encoder(folder, settings.pooling, settings.normalize)
        record = {k: v for k, v in vars(settings).items() if k != "source"}
        self.settings_record = {
            "scorer": self.kind,
            "model": str(Path(folder).resolve()),
            "temperature": self.temperature,
            **record,
        }

    def score(self, pairs: list[tuple[str, str]]) -> list[float]:
        import numpy as np

        queries = list(dict.fromkeys(q for q, _ in pairs))
        passages = list(dict.fromkeys(p for _, p in pairs))
        q_emb = self.encoder.encode(
            [self.settings.query_text(q) for q in queries], self.settings.query_max_len
        )
        p_emb = self.encoder.encode(
            [self.settings.passage_text(p) for p in passages], self.settings.passage_max_len
        )
        q_index = {q: i for i, q in enumerate(queries)}
        p_index = {p: i for i, p in enumerate(passages)}
        sims = [float(np.dot(q_emb[q_index[q]], p_emb[p_index[p]])) for q, p in pairs]
        return [s / self.temperature for s in sims]


def make_scorer(
    model: str | Path,
    config: StudioConfig | None = None,
    base_dir: str | Path = ".",
    temperature: float | None = None,
):
    """A reranker scorer when ``model`` is a cross-encoder, else an embedder scorer."""
    folder = resolve_model(str(model), Path(base_dir))
    if is_reranker(folder):
        return RerankerScorer(folder)
    return EmbedderScorer(folder, config, temperature, base_dir)


class ResumeMismatch(ValueError):
    """The output already holds lines that do not belong to this input or these settings."""


SIDECAR_SUFFIX = ".score-resume"


def sidecar_path(out_path: str | Path) -> Path:
    """Where the fingerprint of the input an output belongs to is kept."""
    out_path = Path(out_path)
    return out_path.with_name(out_path.name + SIDECAR_SUFFIX)


def _fingerprint(path: Path, settings: dict[str, Any]) -> tuple[str, str, int]:
    """Digests of the input's non-blank lines, and of those with the scorer's settings, and the
    row count."""
    digest = hashlib.sha256()
    rows = 0
    with path.open("rb") as source:
        for raw in source:
            if not raw.strip():
                continue
            rows += 1
            digest.update(raw.rstrip(b"\r\n") + b"\n")
    rows_digest = digest.hexdigest()
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode("utf-8"))
    return rows_digest, digest.hexdigest(), rows


def _fix(out_path: Path) -> str:
    return (
        f"Score again from the start with `--restart` (it replaces {out_path}), "
        "or write to a new output file (`--out`)."
    )


def _check_sidecar(out_path: Path, path: Path, digests: tuple[str, str], settings: dict) -> None:
    """Refuse an output whose recorded input or settings are not these."""
    side = sidecar_path(out_path)
    try:
        recorded = json.loads(side.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return  # an output from before sidecars: its lines are still checked row by row
    except (OSError, ValueError):
        recorded = {}
    rows_digest, fingerprint = digests
    if recorded.get("fingerprint") == fingerprint:
        return
    was = recorded.get("settings") or {}
    changed = sorted(k for k in {*was, *settings} if was.get(k) != settings.get(k))
    what = (
        f"other settings ({', '.join(changed)})"
        if changed and recorded.get("input_sha256") == rows_digest
        else f"another input ({recorded.get('input', 'unknown')}, "
        f"{recorded.get('rows', '?')} rows) or other settings"
    )
    raise ResumeMismatch(
        f"{out_path} was scored from {what}, not from {path} as it is now; "
        "resuming would mix rows that do not belong together. " + _fix(out_path)
    )


def _write_sidecar(out_path: Path, path: Path, digests: tuple[str, str], rows: int, settings):
    record = {
        "input": str(path.resolve()),
        "rows": rows,
        "input_sha256": digests[0],
        "fingerprint": digests[1],
        "settings": settings,
    }
    sidecar_path(out_path).write_text(
        json.dumps(record, indent=1, default=str) + "\n", encoding="utf-8"
    )


def _without_scores(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: v for k, v in obj.items() if k not in ("pos_scores", "neg_scores")}
    return obj


def _same_row(written: bytes, obj: Any, raw: bytes) -> bool:
    """Whether an output line is what scoring this input line writes (scores aside)."""
    text = written.rstrip(b"\r\n")
    if obj is None:
        return text == raw.rstrip(b"\r\n").decode("utf-8", "replace").encode("utf-8")
    try:
        row = json.loads(text)
    except ValueError:
        return False
    return (
        isinstance(row, dict)
        and isinstance(row.get("pos_scores"), list)
        and _without_scores(row) == _without_scores(obj)
    )


def _resume_point(out_path: Path) -> tuple[int, int]:
    """Complete lines already in ``out_path``, and the byte length they end at (a partial last
    line after it is cut off once those lines are known to belong to the input)."""
    if not out_path.exists():
        return 0, 0
    data = out_path.read_bytes()
    end = data.rfind(b"\n") + 1
    return data[:end].count(b"\n"), end


def _usable(obj: Any) -> bool:
    return (
        isinstance(obj, dict)
        and isinstance(obj.get("query"), str)
        and isinstance(obj.get("pos"), list)
        and all(isinstance(p, str) for p in obj["pos"])
        and isinstance(obj.get("neg", []), list)
        and all(isinstance(n, str) for n in obj.get("neg", []))
    )


def _parse(raw: bytes) -> Any:
    try:
        return json.loads(raw[3:] if raw.startswith(BOM) else raw)
    except ValueError:
        return None


def score_file(
    path: str | Path,
    out_path: str | Path,
    scorer,
    rows_per_batch: int = ROWS_PER_BATCH,
    progress: Progress | None = None,
    restart: bool = False,
) -> ScoreResult:
    """Stream ``path`` into ``out_path`` with teacher scores; resume where ``out_path`` ends.

    Resuming is refused (:class:`ResumeMismatch`) when the output was made from another input
    or other settings, or a line already written is not its input row; ``restart`` starts the
    output again from nothing instead."""
    started = time.perf_counter()
    path, out_path = Path(path), Path(out_path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is not a file")
    if out_path.resolve() == path.resolve() or (
        out_path.exists() and os.path.samefile(out_path, path)
    ):
        raise ValueError(f"refusing to write over the input {path}; give another output file")
    settings = getattr(scorer, "settings_record", None) or {"scorer": scorer.kind}
    rows_digest, fingerprint, total = _fingerprint(path, settings)
    digests = (rows_digest, fingerprint)
    if restart:
        for stale in (out_path, sidecar_path(out_path)):
            stale.unlink(missing_ok=True)
    done, end = _resume_point(out_path)
    if done:
        _check_sidecar(out_path, path, digests, settings)
    if done > total:
        raise ResumeMismatch(
            f"{out_path} already has {done} lines but {path} has only {total} rows: "
            "it was scored from another input. " + _fix(out_path)
        )
    report = progress or (lambda stage, n, of: None)
    result = ScoreResult(out_path, scorer.kind, 0, done, 0, 0.0)
    batch: list[tuple[int, Any, bytes]] = []

    def flush(handle) -> None:
        pairs = [
            (obj["query"], text)
            for _, obj, _ in batch
            if obj is not None
            for text in [*obj["pos"], *obj.get("neg", [])]
        ]
        scores = iter(scorer.score(pairs)) if pairs else iter(())
        lines = []
        for _, obj, raw in batch:
            if obj is None:
                lines.append(raw.rstrip(b"\r\n").decode("utf-8", "replace"))
                continue
            row = dict(obj)
            row["pos_scores"] = [round(next(scores), 6) for _ in obj["pos"]]
            row["neg_scores"] = [round(next(scores), 6) for _ in obj.get("neg", [])]
            lines.append(json.dumps(row, ensure_ascii=False))
            result.rows_written += 1
        handle.write("".join(line + "\n" for line in lines))
        handle.flush()
        batch.clear()

    index = 0
    written = out_path.open("rb") if done else None
    try:
        with open(path, "rb") as source:
            for lineno, raw in enumerate(source, 1):
                if not raw.strip():
                    continue
                index += 1
                if index > done:
                    break
                obj = _parse(raw)
                if not _same_row(written.readline(), obj if _usable(obj) else None, raw):
                    raise ResumeMismatch(
                        f"{out_path} line {index} is not row {index} of {path} (line "
                        f"{lineno}): the output was scored from another input or order. "
                        + _fix(out_path)
                    )
    finally:
        if written is not None:
            written.close()
    if out_path.exists() and out_path.stat().st_size > end:
        with open(out_path, "r+b") as handle:
            handle.truncate(end)
    _write_sidecar(out_path, path, digests, total, settings)

    index = 0
    with open(path, "rb") as source, open(out_path, "a", encoding="utf-8") as handle:
        for lineno, raw in enumerate(source, 1):
            if not raw.strip():
                continue
            index += 1
            if index <= done:
                continue
            obj = _parse(raw)
            if not _usable(obj):
                result.lines_copied += 1
                result.problems.append(
                    Problem(
                        WARNING,
                        "not a row with `query`, `pos` and `neg` text lists; copied unscored.",
                        "Fix the line (see `python -m studio data check`) and score again.",
                        file=str(path),
                        line=lineno,
                        code="score_unusable_row",
                    )
                )
                obj = None
            batch.append((lineno, obj, raw))
            if len(batch) >= rows_per_batch:
                flush(handle)
                report("scoring", index, total)
        if batch:
            flush(handle)
        report("scoring", total, total)
    result.seconds = time.perf_counter() - started
    return result
