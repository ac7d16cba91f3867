"""The real bundled model on the real example eval set, checked against an independent computation.

The independent side shares no code with the studio: it reads the BEIR files itself, encodes
with plain transformers (fixed batches of 32 in file order, padding to the longest, mean pooling
written out, L2 normalization), scores with a torch matrix product over the whole corpus and
asks pytrec_eval for every metric. The studio must report the same numbers to 1e-6.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import pytrec_eval

from studio.core.config import bundled_model_path
from studio.evaluation.data import load_eval_data
from studio.evaluation.evaluate import evaluate_model, resolve_settings

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT / "example_data" / "eval"
KS = [1, 5, 10, 100]


def independent_metrics(model_dir: Path, data_dir: Path, max_len: int) -> dict[str, float]:
    import torch
    from transformers import AutoModel, AutoTokenizer

    corpus = [json.loads(line) for line in (data_dir / "corpus.jsonl").open() if line.strip()]
    queries = [json.loads(line) for line in (data_dir / "queries.jsonl").open() if line.strip()]
    qrels: dict[str, dict[str, int]] = {}
    with (data_dir / "qrels" / "test.tsv").open() as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            qrels.setdefault(str(row["query-id"]), {})[str(row["corpus-id"])] = int(row["score"])
    queries = [q for q in queries if str(q["_id"]) in qrels]
    doc_ids = [str(d["_id"]) for d in corpus]
    doc_texts = [f"{d.get('title', '')} {d['text']}".strip() for d in corpus]

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModel.from_pretrained(str(model_dir)).eval()

    def embed(texts):
        out = []
        with torch.no_grad():
            for i in range(0, len(texts), 32):
                batch = tokenizer(
                    texts[i : i + 32],
                    padding=True,
                    truncation=True,
                    max_length=max_len,
                    return_tensors="pt",
                )
                hidden = model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).float()
                mean = (hidden * mask).sum(dim=1) / mask.sum(dim=1)
                out.append(torch.nn.functional.normalize(mean, dim=-1))
        return torch.cat(out)

    scores = (embed([q["text"] for q in queries]) @ embed(doc_texts).T).numpy()
    run = {
        str(q["_id"]): {d: float(s) for d, s in zip(doc_ids, row, strict=True)}
        for q, row in zip(queries, scores, strict=True)
    }
    measures = {f"{m}.{','.join(map(str, KS))}" for m in ("ndcg_cut", "recall", "map_cut")}
    per_query = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    means = {}
    for k in KS:
        for ours, theirs in (("ndcg", "ndcg_cut"), ("recall", "recall"), ("map", "map_cut")):
            means[f"{ours}_at_{k}"] = float(
                np.mean([v[f"{theirs}_{k}"] for v in per_query.values()])
            )
        cut = {
            q: dict(sorted(docs.items(), key=lambda d: (d[1], d[0]), reverse=True)[:k])
            for q, docs in run.items()
        }
        rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(cut)
        means[f"mrr_at_{k}"] = float(np.mean([v["recip_rank"] for v in rr.values()]))
    return means


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("eval-cache")


@pytest.fixture(scope="module")
def eval_slice(tmp_path_factory):
    """example_data/eval with every query and every judged passage, and the first 300 other
    passages (of 1,400): the same retrieval task at a quarter of the encoding, since what is
    tested is that two independent computations agree, not the numbers themselves."""
    out = tmp_path_factory.mktemp("eval-slice")
    (out / "qrels").mkdir()
    shutil.copy(EVAL / "queries.jsonl", out / "queries.jsonl")
    shutil.copy(EVAL / "qrels" / "test.tsv", out / "qrels" / "test.tsv")
    with (EVAL / "qrels" / "test.tsv").open() as fh:
        judged = {row["corpus-id"] for row in csv.DictReader(fh, delimiter="\t")}
    lines = [line for line in (EVAL / "corpus.jsonl").open() if line.strip()]
    others = [line for line in lines if json.loads(line)["_id"] not in judged][:300]
    kept = [line for line in lines if json.loads(line)["_id"] in judged or line in others]
    (out / "corpus.jsonl").write_text("".join(kept))
    assert len(kept) == len(judged) + 300
    return out


def test_bundled_model_matches_an_independent_transformers_pytrec_eval_computation(
    cache_dir, eval_slice
):
    assert (EVAL / "corpus.jsonl").is_file(), "example_data/eval is committed"
    settings, warnings = resolve_settings(["bundled:all-MiniLM-L6-v2"])
    assert (settings.pooling, settings.normalize, settings.passage_max_len) == ("mean", True, 256)
    assert not warnings
    data = load_eval_data(eval_slice)
    result = evaluate_model("bundled:all-MiniLM-L6-v2", data, settings, KS, cache_root=cache_dir)
    assert result.n_queries == data.n_queries > 50
    reference = independent_metrics(bundled_model_path(), eval_slice, settings.passage_max_len)
    for name, value in reference.items():
        assert result.metrics[name] == pytest.approx(value, abs=1e-6), name
    # a second evaluation reads every embedding from the cache and gives the same numbers
    again = evaluate_model("bundled:all-MiniLM-L6-v2", data, settings, KS, cache_root=cache_dir)
    assert again.cached == {"queries": True, "corpus": True}
    assert again.metrics == result.metrics
    assert again.seconds < 0.1 * result.seconds
