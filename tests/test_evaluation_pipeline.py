"""The evaluation pipeline end to end on a tiny random BERT: fast, and every face covered.

evaluate_model, the embedding cache, a run folder's eval.json, the presentation functions, the
sentence-transformers export and the `eval` CLI. The model is a 2-layer random BERT built from
the bundled model's config and tokenizer, so the tokenizer is real and each test takes seconds;
test_evaluation_model.py repeats the important checks with the real bundled model.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from studio.cli import evaluation as eval_cli
from studio.core import config as config_mod
from studio.core.config import DeepSpeedSettings, StudioConfig, TorchrunSettings, bundled_model_path
from studio.evaluation import present
from studio.evaluation.data import load_eval_data
from studio.evaluation.encoder import Encoder
from studio.evaluation.evaluate import EvalResult, evaluate_model, evaluate_models, resolve_settings
from studio.evaluation.export import ALT_CARD, CARD_MARKER, export_sentence_transformers
from studio.evaluation.settings import EncodeSettings
from studio.training.run_eval import evaluate_run, read_run_eval

ROOT = Path(__file__).resolve().parents[1]
TOPICS = [
    ("split a path into head and tail", "os.path.split(p): Split a pathname into head and tail."),
    ("join two paths", "os.path.join(a, *p): Join two or more pathname components."),
    ("current time", "time.time(): Return the current time in seconds since the Epoch."),
    ("parse json text", "json.loads(s): Deserialize a str containing a JSON document."),
    ("write json to a file", "json.dump(obj, fp): Serialize obj as a JSON stream to fp."),
    ("copy a file", "shutil.copy(src, dst): Copy data and mode bits."),
    ("remove a directory tree", "shutil.rmtree(path): Recursively delete a directory tree."),
    ("regular expression search", "re.search(pattern, string): Scan through string looking."),
    ("sort a list", "sorted(iterable): Return a new list containing all items in order."),
    ("count items", "collections.Counter: Dict subclass for counting hashable objects."),
]


def make_tiny_model(path: Path, seed: int = 0) -> Path:
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    BertModel(config).save_pretrained(path)
    AutoTokenizer.from_pretrained(str(bundled_model_path())).save_pretrained(path)
    return path


def make_data(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    corpus = [{"_id": i, "title": "", "text": doc} for i, (_, doc) in enumerate(TOPICS)]
    corpus += [{"_id": 100 + i, "text": f"distractor passage number {i}"} for i in range(20)]
    queries = [{"_id": f"q{i}", "text": q} for i, (q, _) in enumerate(TOPICS)]
    queries.append({"_id": "q-unjudged", "text": "nothing judged"})
    (root / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in corpus))
    (root / "queries.jsonl").write_text("".join(json.dumps(r) + "\n" for r in queries))
    (root / "qrels").mkdir(exist_ok=True)
    lines = ["query-id\tcorpus-id\tscore"] + [f"q{i}\t{i}\t1" for i in range(len(TOPICS))]
    lines.append("q3\t4\t2")
    (root / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    base = tmp_path_factory.mktemp("tiny")
    return {
        "a": make_tiny_model(base / "model-a", seed=0),
        "b": make_tiny_model(base / "model-b", seed=1),
        "data": make_data(base / "eval"),
    }


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BGE_STUDIO_CACHE", str(tmp_path / "cache"))


SETTINGS = EncodeSettings(pooling="cls", normalize=True, query_max_len=16, passage_max_len=32)


def test_evaluate_model_and_cache(tiny, monkeypatch):
    data = load_eval_data(tiny["data"])
    first = evaluate_model(tiny["a"], data, SETTINGS, ks=[1, 5, 10])
    assert first.n_queries == 10 and data.skipped == {"q-unjudged": "no qrels"}
    assert set(first.metrics) == {
        f"{m}_at_{k}" for m in ("ndcg", "recall", "mrr", "map") for k in (1, 5, 10)
    }
    assert all(0 <= v <= 1 for v in first.metrics.values())
    assert first.cached == {"queries": False, "corpus": False}
    assert len(first.top_hits["q0"]) == 10

    def no_model(*args, **kwargs):
        raise AssertionError("a cached evaluation must not load the model")

    monkeypatch.setattr("studio.evaluation.encoder.Encoder.__init__", no_model)
    second = evaluate_model(tiny["a"], data, SETTINGS, ks=[1, 5, 10])
    assert second.cached == {"queries": True, "corpus": True}
    assert second.metrics == first.metrics and second.per_query == first.per_query
    with pytest.raises(AssertionError, match="must not load"):  # other settings: a new entry
        evaluate_model(tiny["a"], data, SETTINGS.with_changes(pooling="mean"), ks=[1, 5, 10])


def test_encoder_batches_by_length_without_changing_embeddings(tiny):
    texts = [doc for _, doc in TOPICS] + ["x", "a much longer text " * 20]
    enc = Encoder(tiny["a"], "mean", False)
    batched = enc.encode(texts, 64)
    enc.tokens_per_batch = 1  # one text per batch: no padding at all
    single = enc.encode(texts, 64)
    np.testing.assert_allclose(batched, single, atol=2e-6)
    assert batched.dtype == np.float32 and batched.shape == (len(texts), 32)


def test_last_token_pooling_matches_flagembedding(tiny):
    import torch

    from studio.evaluation.encoder import pool

    hidden = torch.arange(2 * 4 * 1, dtype=torch.float32).reshape(2, 4, 1)
    right = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    assert pool(hidden, right, "last_token").flatten().tolist() == [2.0, 5.0]
    left = torch.tensor([[0, 1, 1, 1], [0, 0, 1, 1]])
    assert pool(hidden, left, "last_token").flatten().tolist() == [3.0, 7.0]
    assert pool(hidden, right, "cls").flatten().tolist() == [0.0, 4.0]
    assert pool(hidden, right, "mean").flatten().tolist() == [1.0, 4.5]


def test_settings_resolution_prefers_config_then_st_then_defaults(tiny):
    settings, warnings = resolve_settings([tiny["a"]])
    assert settings.pooling == "cls" and warnings  # bare HF model: FlagEmbedding defaults
    settings, warnings = resolve_settings([tiny["a"], "bundled:all-MiniLM-L6-v2"])
    assert settings.pooling == "mean" and settings.query_max_len == 256 and not warnings
    config = StudioConfig({"sentence_pooling_method": "cls", "query_max_len": 40})
    settings, warnings = resolve_settings([tiny["a"], "bundled:all-MiniLM-L6-v2"], config)
    assert (settings.pooling, settings.query_max_len) == ("cls", 40)
    assert any("built for mean pooling" in w for w in warnings)
    settings, _ = resolve_settings([tiny["a"]], config, {"pooling": "last_token"})
    assert settings.pooling == "last_token" and settings.query_max_len == 40


def fake_run(tmp_path: Path, tiny, steps=(2, 4)) -> Path:
    """A run folder as the run manager leaves it, with tiny models as base/checkpoints/final."""
    import shutil

    run_dir = tmp_path / "runs" / "r1"
    out = run_dir / "model"
    shutil.copytree(tiny["b"], out)
    for step in steps:
        shutil.copytree(tiny["b"] if step == steps[-1] else tiny["a"], out / f"checkpoint-{step}")
    config = StudioConfig(
        {
            "model_name_or_path": str(tiny["a"]),
            "train_data": [str(tiny["data"] / "corpus.jsonl")],
            "output_dir": str(out),
            "sentence_pooling_method": "mean",
            "query_max_len": 16,
            "passage_max_len": 32,
            "query_instruction_for_retrieval": "Q: ",
        },
        TorchrunSettings(),
        DeepSpeedSettings(stage=0),
        {"evaluate_at_end": True, "eval_data": str(tiny["data"])},
    )
    config_mod.save(config, run_dir / "config.yaml")
    (run_dir / "status.json").write_text(json.dumps({"state": "succeeded"}))
    (run_dir / "metrics.jsonl").write_text(
        "".join(json.dumps({"step": s, "loss": 1.0 / s}) + "\n" for s in range(1, steps[-1] + 1))
    )
    return run_dir


def test_evaluate_run_writes_eval_json_with_checkpoints(tmp_path, tiny):
    run_dir = fake_run(tmp_path, tiny)
    report = evaluate_run(run_dir, ks=[1, 10])
    assert read_run_eval(run_dir) == json.loads((run_dir / "eval.json").read_text())
    assert list(report["models"]) == ["base", "checkpoint-2", "checkpoint-4", "final"]
    assert [m["step"] for m in report["models"].values()] == [0, 2, 4, 4]
    assert (
        report["settings"]["pooling"] == "mean" and report["settings"]["query_instruction"] == "Q: "
    )
    assert report["same_weights_as_final"] == ["checkpoint-4"]  # not encoded twice
    assert report["models"]["checkpoint-2"]["ndcg_at_10"] == report["models"]["base"]["ndcg_at_10"]
    assert report["delta"]["ndcg_at_10"] == pytest.approx(
        report["models"]["final"]["ndcg_at_10"] - report["models"]["base"]["ndcg_at_10"]
    )
    assert (
        "per_query" in report["models"]["final"]
        and "per_query" not in report["models"]["checkpoint-2"]
    )

    table = present.comparison_table(report)
    assert list(table.columns) == ["base", "final", "delta"]
    assert table.loc["nDCG@10", "delta"] == pytest.approx(report["delta"]["ndcg_at_10"])
    fig = present.bar_chart(report)
    assert [t.name for t in fig.data] == ["base", "final"]
    steps = present.metrics_over_steps(report)
    assert list(steps.data[0].x) == [0, 2, 4, 4] and steps.data[0].name == "nDCG@10"

    data = load_eval_data(tiny["data"])
    frame = present.per_query_table(
        report["models"]["base"], report["models"]["final"], data, n=3, labels=("base", "final")
    )
    assert set(frame["change"]) <= {"win", "loss"} and len(frame) <= 6
    wins = frame[frame["change"] == "win"]
    assert (wins["delta"] > 0).all() and list(wins["delta"]) == sorted(wins["delta"], reverse=True)
    if len(frame):
        row = frame.iloc[0]
        assert row["query"] == data.query_text(row["query_id"])
        assert "final top hits" in frame.columns and row["relevant"].startswith("[")


def test_evaluate_models_and_tables_from_results(tiny):
    results = evaluate_models(
        {"base": tiny["a"], "tuned": tiny["b"]}, tiny["data"], SETTINGS, ks=[1, 10]
    )
    table = present.comparison_table(results)
    assert list(table.index)[:2] == ["nDCG@1", "nDCG@10"] and list(table.columns) == [
        "base",
        "tuned",
        "delta",
    ]
    again = EvalResult.from_dict("tuned", json.loads(json.dumps(results["tuned"].to_dict())))
    assert again.metrics == results["tuned"].metrics and again.top_hits == results["tuned"].top_hits


@pytest.mark.parametrize(
    "pooling,normalize", [("cls", True), ("mean", False), ("last_token", True)]
)
def test_export_loads_in_sentence_transformers_with_the_same_embeddings(
    tmp_path, tiny, pooling, normalize
):
    import shutil

    from sentence_transformers import SentenceTransformer

    model_dir = tmp_path / "model"
    shutil.copytree(tiny["b"], model_dir)
    config = StudioConfig(
        {
            "model_name_or_path": "bundled:all-MiniLM-L6-v2",
            "sentence_pooling_method": pooling,
            "normalize_embeddings": normalize,
            "query_max_len": 64,
            "passage_max_len": 64,
            "query_instruction_for_retrieval": "Represent this query: ",
        }
    )
    result = export_sentence_transformers(
        model_dir, config, metrics={"base": {"ndcg_at_10": 0.5}, "final": {"ndcg_at_10": 0.6}}
    )
    assert (model_dir / "2_Normalize").is_dir() == normalize
    card = (model_dir / "README.md").read_text()
    assert CARD_MARKER in card and "| nDCG@10 | 0.5000 | 0.6000 | +0.1000 |" in card
    assert (
        "sentence_pooling_method: " + pooling in card
        and "sentence-transformers/all-MiniLM-L6-v2" in card
    )
    assert result.card == model_dir / "README.md"

    st = SentenceTransformer(str(model_dir), device="cpu")
    texts = [doc for _, doc in TOPICS]
    ours = Encoder(model_dir, pooling, normalize).encode(texts, 64)
    np.testing.assert_allclose(st.encode(texts, convert_to_numpy=True), ours, atol=1e-5)
    queries = [q for q, _ in TOPICS]
    settings = EncodeSettings(
        pooling=pooling,
        normalize=normalize,
        query_max_len=64,
        passage_max_len=64,
        query_instruction="Represent this query: ",
    )
    ours_q = Encoder(model_dir, pooling, normalize).encode(
        [settings.query_text(q) for q in queries], 64
    )
    np.testing.assert_allclose(st.encode_query(queries, convert_to_numpy=True), ours_q, atol=1e-5)


def test_export_keeps_a_users_readme(tmp_path, tiny):
    import shutil

    model_dir = tmp_path / "model"
    shutil.copytree(tiny["a"], model_dir)
    (model_dir / "README.md").write_text("# my own notes\n")
    result = export_sentence_transformers(
        model_dir, StudioConfig({"sentence_pooling_method": "cls"})
    )
    assert (model_dir / "README.md").read_text() == "# my own notes\n"
    assert result.card == model_dir / ALT_CARD and any(
        "kept the existing" in w for w in result.warnings
    )
    (model_dir / ALT_CARD).unlink()
    (model_dir / "README.md").write_text(CARD_MARKER + "\nold card\n")  # ours: regenerated
    export_sentence_transformers(model_dir, StudioConfig({"sentence_pooling_method": "cls"}))
    assert "old card" not in (model_dir / "README.md").read_text()


# --------------------------------------------------------------------------- CLI


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="studio")
    sub = parser.add_subparsers(dest="cmd", required=True)
    eval_cli.register(sub)
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_eval_writes_json_per_model(tmp_path, tiny, capsys):
    out = tmp_path / "out.json"
    code = run_cli(
        [
            "eval",
            "--model",
            str(tiny["b"]),
            "--baseline",
            str(tiny["a"]),
            "--data",
            str(tiny["data"]),
            "--pooling",
            "mean",
            "--query-max-len",
            "16",
            "--passage-max-len",
            "32",
            "--query-instruction",
            "Q: ",
            "--k",
            "1,10",
            "--json",
            str(out),
            "--per-query",
            "2",
        ]
    )
    assert code == 0
    report = json.loads(out.read_text())
    assert set(report["models"]) == {"baseline", "model"}
    for entry in report["models"].values():
        assert {"ndcg_at_10", "recall_at_10", "mrr_at_10", "map_at_10", "ndcg_at_1"} <= set(entry)
    assert (
        report["settings"]["pooling"] == "mean" and report["settings"]["query_instruction"] == "Q: "
    )
    assert report["data"]["skipped_queries"] == 1
    printed = capsys.readouterr()
    assert "nDCG@10" in printed.out and "delta" in printed.out
    assert "note: 1 queries are left out of every metric" in printed.err
    assert any("left out of every metric" in w for w in report["warnings"])  # in the JSON too


def test_cli_eval_run_uses_the_training_config(tmp_path, tiny):
    run_dir = fake_run(tmp_path, tiny)
    assert run_cli(["eval", "--run", str(run_dir), "--k", "10"]) == 0
    report = json.loads((run_dir / "eval.json").read_text())
    assert report["settings"]["query_instruction"] == "Q: " and "checkpoint-2" in report["models"]
    out = tmp_path / "cfg.json"
    assert (
        run_cli(["eval", "--run", str(run_dir), "--model", str(tiny["a"]), "--json", str(out)]) == 0
    )
    assert json.loads(out.read_text())["settings"]["pooling"] == "mean"


def test_cli_eval_reports_bad_data_with_file_and_line(tmp_path, tiny, capsys):
    bad = make_data(tmp_path / "bad")
    (bad / "queries.jsonl").write_text('{"_id": "q0", "text": "ok"}\n{"_id": "q1", "text": }\n')
    assert run_cli(["eval", "--model", str(tiny["a"]), "--data", str(bad)]) == 2
    assert "queries.jsonl:2" in capsys.readouterr().err


def test_cli_module_imports_nothing_heavy():
    code = (
        "import sys, studio.cli.evaluation, studio.evaluation; "
        "heavy = [m for m in ('torch', 'transformers', 'faiss', 'pandas', 'plotly', 'numpy') "
        "if m in sys.modules]; print(heavy); sys.exit(1 if heavy else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
