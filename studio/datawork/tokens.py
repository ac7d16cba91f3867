"""Token lengths of queries and passages with the model's own tokenizer, as the model sees them.

FlagEmbedding cuts every query at `query_max_len` and every passage at `passage_max_len` tokens
without a word of warning; users learn only from a poor evaluation that half their passages were
truncated. Here the texts are built with the config's instruction rules
(:mod:`studio.datawork.instructions`), tokenized with special tokens as the collator does, and
summarised: the share cut at the current limits, p95/p99 and a suggested limit. Small files are
measured exactly; large ones through a uniform sample whose size the user sets, and the chart
says which.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.core.config import StudioConfig
from studio.datawork import rows as rows_mod
from studio.datawork.check import CheckReport
from studio.datawork.instructions import Rules, prompt_census
from studio.datawork.module_preview import RerankRules, load_tokenizer

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import plotly.graph_objects as go


@dataclass
class TokenLengths:
    query: np.ndarray  # tokens per query, special tokens included
    passage: np.ndarray  # tokens per passage drawn (one positive, group_size - 1 negatives a row)
    query_max_len: int
    passage_max_len: int
    rows_measured: int
    total_rows: int  # lines in the files: the population the sample was drawn from
    exact: bool
    model: str
    model_limit: int | None  # the model's own maximum, when it has one

    def truncated(self, kind: str) -> float:
        """Share of queries or passages longer than the current limit (0..1)."""
        values, limit = self._values(kind)
        return float((values > limit).mean()) if len(values) else 0.0

    def suggest(self, kind: str) -> dict[str, int]:
        """p95, p99 and a suggested limit: p99 rounded up to a multiple of 8, within the model."""
        import numpy as np

        values, _ = self._values(kind)
        if not len(values):
            return {"p95": 0, "p99": 0, "max": 0, "suggested": 0}
        p95, p99 = (int(np.ceil(np.percentile(values, q))) for q in (95, 99))
        suggested = -(-p99 // 8) * 8
        if self.model_limit:
            suggested = min(suggested, self.model_limit)
        return {"p95": p95, "p99": p99, "max": int(values.max()), "suggested": suggested}

    def _values(self, kind: str) -> tuple[np.ndarray, int]:
        if kind == "query":
            return self.query, self.query_max_len
        if kind == "passage":
            return self.passage, self.passage_max_len
        raise ValueError(f"kind must be 'query' or 'passage', not {kind!r}")

    def description(self) -> str:
        if self.exact:
            return f"exact: all {self.rows_measured:,} rows"
        return f"uniform sample of {self.rows_measured:,} of {self.total_rows:,} rows"

    def table(self) -> pd.DataFrame:
        import pandas as pd

        out = []
        for kind in ("query", "passage"):
            values, limit = self._values(kind)
            out.append(
                {
                    "text": kind,
                    "measured": len(values),
                    "max_len": limit,
                    "truncated_share": round(self.truncated(kind), 4),
                    "mean": round(float(values.mean()), 1) if len(values) else 0.0,
                    **self.suggest(kind),
                }
            )
        return pd.DataFrame(out)

    def summary(self) -> dict[str, Any]:
        return {
            "description": self.description(),
            "exact": self.exact,
            "model": self.model,
            **{
                f"{kind}_{k}": v
                for kind in ("query", "passage")
                for k, v in {"truncated": self.truncated(kind), **self.suggest(kind)}.items()
            },
        }

    def figure(self) -> go.Figure:
        """Histograms of query and passage lengths with the max-length lines drawn."""
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        fig = make_subplots(rows=1, cols=2, subplot_titles=("Queries", "Passages"))
        for col, kind in ((1, "query"), (2, "passage")):
            values, limit = self._values(kind)
            fig.add_trace(go.Histogram(x=values, name=kind, nbinsx=60), row=1, col=col)
            fig.add_vline(
                x=limit,
                line_dash="dash",
                line_color="red",
                annotation_text=(f"{kind}_max_len={limit}: {self.truncated(kind):.1%} cut"),
                annotation_position="top right",
                row=1,
                col=col,
            )
        fig.update_layout(
            title=f"Token lengths with {self.model} ({self.description()})",
            showlegend=False,
            bargap=0.05,
        )
        fig.update_xaxes(title_text="tokens")
        fig.update_yaxes(title_text="texts", col=1)
        return fig


def _lengths(tokenizer, texts: list[str], batch: int = 1000) -> np.ndarray:
    import numpy as np

    out: list[int] = []
    for i in range(0, len(texts), batch):
        encoded = tokenizer(
            texts[i : i + batch], add_special_tokens=True, truncation=False, verbose=False
        )
        out += [len(ids) for ids in encoded["input_ids"]]
    return np.array(out, dtype=np.int64)


def _model_limit(tokenizer) -> int | None:
    limit = getattr(tokenizer, "model_max_length", None)
    return int(limit) if isinstance(limit, int) and limit < 1_000_000 else None


def _text_rules(config: StudioConfig, prompt_column: bool):
    """The module's text rules: a reranker's instructions are the `*_for_rerank` ones, and its
    rows' `prompt` is the LLM reranker's question, not an instruction."""
    from studio.facts.modules import get

    if get(config.module).is_reranker:
        return RerankRules.from_config(config)
    return Rules.from_config(config, prompt_column=prompt_column)


def token_lengths(
    config: StudioConfig,
    sample_size: int = 2000,
    seed: int = 0,
    *,
    paths: list[str | Path] | None = None,
    tokenizer=None,
    base_dir: str | Path = ".",
    report: CheckReport | None = None,
) -> TokenLengths:
    """Token lengths of the texts the model will see under this config.

    Files with at most `sample_size` lines are measured exactly; larger ones through a uniform
    sample of `sample_size` rows. Each measured row contributes its query, one positive and
    `train_group_size - 1` negatives, drawn as FlagEmbedding draws them. A check `report` of the
    same paths saves the scan for `prompt` keys.
    """
    paths = list(paths if paths is not None else config.args.get("train_data") or [])
    tokenizer = tokenizer or load_tokenizer(config, base_dir)
    drawn = rows_mod.sample(paths, sample_size, seed)
    rules = _text_rules(config, prompt_census(paths, report).column)
    rng = random.Random(seed)
    queries, passages = [], []
    needed = max(int(config.get("train_group_size") or 1) - 1, 0)
    for row in drawn.rows:
        data = row.data
        pos = [p for p in data.get("pos") or [] if isinstance(p, str)]
        neg = [p for p in data.get("neg") or [] if isinstance(p, str)]
        if not isinstance(data.get("query"), str) or not pos:
            continue
        try:
            queries.append(rules.query_text(data))
            passages.append(rules.passage_text(data, rng.choice(pos)))
            if neg:
                picks = rng.sample(neg * -(-needed // len(neg)), needed)
                passages += [rules.passage_text(data, p) for p in picks]
        except (IndexError, KeyError, ValueError):
            continue  # a broken format: format_warnings reports it
    return TokenLengths(
        query=_lengths(tokenizer, queries),
        passage=_lengths(tokenizer, passages),
        query_max_len=int(config.get("query_max_len")),
        passage_max_len=int(config.get("passage_max_len")),
        rows_measured=len(queries),
        total_rows=drawn.total_lines,
        exact=drawn.exact,
        model=str(config.get("model_name_or_path") or getattr(tokenizer, "name_or_path", "")),
        model_limit=_model_limit(tokenizer),
    )
