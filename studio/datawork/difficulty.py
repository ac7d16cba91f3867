"""How hard a training file's negatives are, before a run spends hours on them.

Two ways negatives waste a fine-tune, both common in FlagEmbedding's issue tracker:

- **too easy**: the positive already wins by so much that the contrastive loss is ~0 from the
  first steps ("my loss went to 0.002 in 100 steps") and the model learns nothing, or learns to
  separate the trivially different;
- **false negatives**: a "negative" that is (nearly) the positive itself, a copy or a
  paraphrase of it, is another right answer, and training pushes the model away from it.

A negative that merely scores close to the positive is not flagged: that is what a hard
negative is (on FlagEmbedding's own example data, 11% of the negatives outscore their positive
with an untrained MiniLM), and training is what separates them. A likely false negative is one
whose own embedding is nearly the positive's (cosine >= ``DUPLICATE_COSINE``). The share above
``ratio`` of the positive's score is shown as a fact, and ``data mine --max-neg-ratio`` drops
such negatives when mining.

This module scores each row's positive and negatives with the model that will be trained (its
pooling, normalisation and query instruction, as mining does) and estimates each row's loss with
the config's temperature, using the row's own negatives only:
``loss = log(1 + sum_i exp((s_neg_i - s_pos) / T))``. In-batch negatives add to it in training;
they are random passages, so they are easier still, and leaving them out makes "too easy" a
statement that holds in the run too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.datawork import rows as rowfiles
from studio.facts.problems import WARNING, Problem

EASY_ROW_LOSS = 0.01  # a row whose loss is under this teaches (almost) nothing
TOO_EASY_SHARE = 0.5  # flag the file when at least this share of rows is that easy
CLOSE_RATIO = 0.95  # shown: negatives scoring >= 95% of their positive (hard, or false)
# A negative this similar to its own positive is (nearly) the same text. Measured on
# FlagEmbedding's example data with MiniLM: 6.3% of its (good, hard) negatives reach 0.95 to
# their positive (deque.append vs deque.appendleft), 1.2% reach 0.98, 0.4% reach 0.99; copies
# are 1.0. So 0.99, where a flag on that file would be a false alarm.
DUPLICATE_COSINE = 0.99
FALSE_NEGATIVE_SHARE = 0.05  # flag the file when at least this share of negatives is such


@dataclass
class Difficulty:
    rows: int
    negatives: int
    temperature: float
    pos_scores: list[float]
    neg_scores: list[float]
    row_losses: list[float]
    easy_rows: int
    close_negatives: int
    duplicate_negatives: int
    ratio: float
    sampled_from: int
    problems: list[Problem] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        losses = sorted(self.row_losses)
        median = losses[len(losses) // 2] if losses else float("nan")
        out = {
            "rows scored": f"{self.rows:,}"
            + (f" (a sample of {self.sampled_from:,})" if self.sampled_from > self.rows else ""),
            "negatives": f"{self.negatives:,}",
            "temperature": self.temperature,
            "median row loss": round(median, 4),
            "rows too easy": _share(self.easy_rows, self.rows),
            f"negatives >= {self.ratio:.0%} of pos": _share(self.close_negatives, self.negatives),
            "near-copies of the pos": _share(self.duplicate_negatives, self.negatives),
        }
        return out

    def figure(self):
        """The score distributions of positives and negatives, one histogram each."""
        import plotly.graph_objects as go

        fig = go.Figure()
        fig.add_histogram(x=self.pos_scores, name="positives", opacity=0.6, nbinsx=40)
        fig.add_histogram(x=self.neg_scores, name="negatives", opacity=0.6, nbinsx=40)
        fig.update_layout(
            barmode="overlay",
            title="Similarity to the query: positives vs negatives",
            xaxis_title="cosine similarity (the model's own scores)",
            yaxis_title="count",
            height=320,
            margin={"l": 40, "r": 10, "t": 40, "b": 40},
        )
        return fig


def _share(n: int, d: int) -> str:
    return f"{n:,} ({n / d:.0%})" if d else "0"


def row_loss(s_pos: float, s_negs: list[float], temperature: float) -> float:
    """The InfoNCE loss of one row against its own negatives (log-sum-exp, overflow-safe)."""
    if not s_negs:
        return float("nan")
    terms = [(s - s_pos) / temperature for s in s_negs]
    top = max(0.0, *terms)
    return top + math.log(math.exp(-top) + sum(math.exp(t - top) for t in terms))


def assess(
    pos_scores: list[float],
    neg_scores: list[list[float]],
    neg_pos_cosines: list[list[float]],
    temperature: float,
    ratio: float = CLOSE_RATIO,
    sampled_from: int | None = None,
    file: str | None = None,
) -> Difficulty:
    """The verdict on already-scored rows: pure arithmetic, so every threshold is testable."""
    losses = [row_loss(p, n, temperature) for p, n in zip(pos_scores, neg_scores, strict=True)]
    scored = [x for x in losses if not math.isnan(x)]
    easy = sum(1 for x in scored if x < EASY_ROW_LOSS)
    close = sum(
        1 for p, ns in zip(pos_scores, neg_scores, strict=True) for s in ns if s >= ratio * p
    )
    flat = [s for ns in neg_scores for s in ns]
    dup = sum(1 for cs in neg_pos_cosines for c in cs if c >= DUPLICATE_COSINE)
    result = Difficulty(
        rows=len(pos_scores),
        negatives=len(flat),
        temperature=temperature,
        pos_scores=list(pos_scores),
        neg_scores=flat,
        row_losses=scored,
        easy_rows=easy,
        close_negatives=close,
        duplicate_negatives=dup,
        ratio=ratio,
        sampled_from=sampled_from or len(pos_scores),
    )
    if scored and easy / len(scored) >= TOO_EASY_SHARE:
        result.problems.append(
            Problem(
                WARNING,
                f"negatives too easy: {easy:,} of {len(scored):,} rows already have a loss under "
                f"{EASY_ROW_LOSS} at temperature {temperature} (the positive wins by far), so the "
                "training loss will go to ~0 within a few steps and the model learns little.",
                "Mine harder negatives with the model you train: python -m studio data mine FILE "
                "--model MODEL --range 2-50 --out MINED.jsonl (a range nearer the top gives harder "
                "ones); or raise `temperature`.",
                file=file,
                code="negatives_too_easy",
            )
        )
    if flat and dup / len(flat) >= FALSE_NEGATIVE_SHARE:
        result.problems.append(
            Problem(
                WARNING,
                f"likely false negatives: {dup:,} of {len(flat):,} negatives are near-copies of "
                f"their row's positive (cosine >= {DUPLICATE_COSINE} to it): right answers "
                "labelled wrong, which training pushes the model away from.",
                "Remove them (check with `python -m studio data preview`), or mine again with the "
                f"filter: python -m studio data mine FILE --model MODEL --max-neg-ratio {ratio} "
                "--out MINED.jsonl.",
                file=file,
                code="negatives_false",
            )
        )
    return result


def difficulty(
    paths: list[str | Path],
    encoder,
    *,
    temperature: float = 0.02,
    query_instruction: str | None = None,
    query_format: str = "{}{}",
    sample_size: int = 1000,
    ratio: float = CLOSE_RATIO,
    seed: int = 0,
) -> Difficulty:
    """Score a sample of rows of ``paths`` with ``encoder`` (a datawork Encoder) and assess."""
    import numpy as np

    picked = rowfiles.sample(paths, sample_size, seed)
    usable = [
        r.data
        for r in picked.rows
        if isinstance(r.data, dict)
        and isinstance(r.data.get("query"), str)
        and isinstance(r.data.get("pos"), list)
        and r.data["pos"]
        and isinstance(r.data.get("neg"), list)
    ]
    if not usable:
        raise ValueError(
            f"{', '.join(map(str, paths))}: no row with `query`, `pos` and `neg` lists to score; "
            "run `python -m studio data check` first"
        )
    queries = [
        query_format.format(query_instruction, o["query"]) if query_instruction else o["query"]
        for o in usable
    ]
    texts = [str(o["pos"][0]) for o in usable] + [str(n) for o in usable for n in o["neg"]]
    q = encoder.encode(queries)
    t = encoder.encode(texts)
    positives = t[: len(usable)]
    pos = np.einsum("ij,ij->i", q, positives)
    negs, copies, at = [], [], len(usable)
    for i, o in enumerate(usable):
        block = t[at : at + len(o["neg"])]
        negs.append([float(x) for x in block @ q[i]])
        copies.append([float(x) for x in block @ positives[i]])
        at += len(o["neg"])
    return assess(
        [float(x) for x in pos],
        negs,
        copies,
        temperature,
        ratio,
        sampled_from=picked.total_lines,
        file=", ".join(map(str, paths)),
    )


def for_config(
    paths: list[str | Path],
    config,
    base_dir: str | Path = ".",
    *,
    model: str | None = None,
    sample_size: int = 1000,
    ratio: float = CLOSE_RATIO,
    temperature: float | None = None,
    **encoder_options,
) -> Difficulty:
    """:func:`difficulty` as the config will train: its model (or ``model``), pooling, query
    instruction and format, and temperature."""
    from studio.datawork.encoder import Encoder

    if model:
        config = config.with_args(model_name_or_path=model)
    return difficulty(
        paths,
        Encoder.from_config(config, base_dir, **encoder_options),
        temperature=temperature or float(config.get("temperature") or 0.02),
        query_instruction=config.get("query_instruction_for_retrieval"),
        query_format=(config.get("query_instruction_format") or "{}{}").replace("\\n", "\n"),
        sample_size=sample_size,
        ratio=ratio,
    )
