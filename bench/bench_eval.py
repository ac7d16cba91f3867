"""Benchmark: the studio's evaluation against FlagEmbedding's own evaluator, same model and data.

    python bench/bench_eval.py [--queries 20] [--data example_data/eval] [--model bundled:...]

What it measures (CPU, one process, imports paid before any clock starts):

1. ``FlagEmbedding.evaluation.custom`` (CustomEvalRunner.run) on the bundled model, a subset of
   the queries and the *full* corpus, with the model's own settings (mean pooling, normalized,
   256 tokens: the same the studio reads from the model's sentence-transformers config).
2. ``studio.evaluation.evaluate_model`` on the same model and data, with an empty cache.
3. The same call again: everything comes from the embedding cache.

It checks that the metric values are identical (FlagEmbedding rounds to 5 decimals, so the
studio's values are compared rounded the same way) and prints both times and the ratios; the
targets are studio/FlagEmbedding <= 0.25 and cached/first <= 0.1. Exit code 1 if a check fails.

FlagEmbedding's custom evaluator wants string ids, a qrel for every query, and keys results by
the model folder's base name: the subset is written in its layout with string ids, only
queries with qrels, one model per output folder.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KS = [1, 5, 10, 100]
METRICS = [f"{m}_at_{k}" for m in ("ndcg", "recall", "mrr", "map") for k in KS]


def write_flagembedding_layout(data, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with (out / "corpus.jsonl").open("w", encoding="utf-8") as fh:
        for doc_id, text in zip(data.corpus_ids, data.corpus_texts, strict=True):
            # the studio's passage is already "title text": give it to FlagEmbedding as text
            fh.write(json.dumps({"id": doc_id, "title": "", "text": text}) + "\n")
    with (out / "test_queries.jsonl").open("w", encoding="utf-8") as fh:
        for qid, text in zip(data.query_ids, data.query_texts, strict=True):
            fh.write(json.dumps({"id": qid, "text": text}) + "\n")
    with (out / "test_qrels.jsonl").open("w", encoding="utf-8") as fh:
        for qid in data.query_ids:
            for doc_id, rel in data.qrels[qid].items():
                fh.write(json.dumps({"qid": qid, "docid": doc_id, "relevance": rel}) + "\n")


def find_metrics(node):
    if isinstance(node, dict):
        if "ndcg_at_10" in node:
            return node
        for value in node.values():
            found = find_metrics(value)
            if found:
                return found
    return None


def run_flagembedding(model_dir: Path, dataset_dir: Path, work: Path, settings) -> dict:
    from FlagEmbedding.evaluation.custom import (
        CustomEvalArgs,
        CustomEvalModelArgs,
        CustomEvalRunner,
    )

    eval_args = CustomEvalArgs(
        eval_name="bench",
        dataset_dir=str(dataset_dir),
        splits=["test"],
        output_dir=str(work / "search_results"),
        cache_path=str(work / "hf_datasets"),
        search_top_k=max(KS),
        k_values=KS,
        eval_output_method="json",
        eval_output_path=str(work / "eval_results.json"),
        eval_metrics=["ndcg_at_10", "recall_at_10"],
        overwrite=True,
    )
    model_args = CustomEvalModelArgs(
        embedder_name_or_path=str(model_dir),
        embedder_model_class="encoder-only-base",
        pooling_method=settings.pooling,
        normalize_embeddings=settings.normalize,
        devices=["cpu"],
        embedder_query_max_length=settings.query_max_len,
        embedder_passage_max_length=settings.passage_max_len,
    )
    CustomEvalRunner(eval_args=eval_args, model_args=model_args).run()
    results = json.loads((work / "eval_results.json").read_text())
    return find_metrics(results)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(ROOT / "example_data" / "eval"))
    parser.add_argument("--model", default="bundled:all-MiniLM-L6-v2")
    parser.add_argument("--queries", type=int, default=20, help="queries in the subset")
    args = parser.parse_args()

    # Pay every import before any clock starts, for both sides.
    import FlagEmbedding.evaluation.custom  # noqa: F401
    import torch  # noqa: F401
    import transformers  # noqa: F401

    from studio.evaluation.data import load_eval_data
    from studio.evaluation.encoder import available_cores
    from studio.evaluation.evaluate import evaluate_model, resolve_model_path
    from studio.evaluation.settings import settings_for_model

    model_dir = resolve_model_path(args.model)
    settings = settings_for_model(model_dir)
    full = load_eval_data(args.data)
    data = full.subset(full.query_ids[: args.queries])
    print(
        f"data: {data.n_queries} queries, {len(data.corpus_ids)} passages; model: {model_dir.name} "
        f"({settings.pooling}, normalize={settings.normalize}, max_len "
        f"{settings.query_max_len}/{settings.passage_max_len}); {available_cores()} CPU cores"
    )

    with tempfile.TemporaryDirectory(prefix="bench-eval-") as tmp:
        work = Path(tmp)
        write_flagembedding_layout(data, work / "data")

        t0 = time.perf_counter()
        fe = run_flagembedding(model_dir, work / "data", work / "fe", settings)
        t_fe = time.perf_counter() - t0

        cache_root = work / "cache"
        t0 = time.perf_counter()
        first = evaluate_model(model_dir, data, settings, KS, cache_root=cache_root)
        t_first = time.perf_counter() - t0

        t0 = time.perf_counter()
        second = evaluate_model(model_dir, data, settings, KS, cache_root=cache_root)
        t_second = time.perf_counter() - t0

    ok = True
    print(f"\n{'metric':14} {'FlagEmbedding':>14} {'studio':>10}  same")
    for name in METRICS:
        ours = round(first.metrics[name], 5)
        theirs = fe.get(name)
        same = theirs is not None and abs(ours - theirs) <= 1e-9
        ok &= same
        print(f"{name:14} {theirs!s:>14} {ours:>10.5f}  {'yes' if same else 'NO'}")
    if second.metrics != first.metrics or not all(second.cached.values()):
        ok = False
        print("the cached evaluation differs from the first one")

    ratio = t_first / t_fe
    cached_ratio = t_second / t_first
    print(f"\nFlagEmbedding evaluator      {t_fe:8.2f} s")
    print(f"studio, first (cold cache)   {t_first:8.2f} s   ratio {ratio:.3f}x  (target <= 0.25x)")
    print(
        f"studio, second (cached)      {t_second:8.2f} s   ratio {cached_ratio:.4f}x of the first "
        "(target <= 0.1x)"
    )
    ok &= ratio <= 0.25 and cached_ratio <= 0.1
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
