"""Evaluation per fine-tune module, on small models built here (fast; no training).

The real runs (tests/test_modes_runs.py) show the whole path; these pin the pieces down:
M3's four scores equal what FlagEmbedding's BGEM3FlagModel computes for the same pairs, the
reranker reorders only the first stage's top k, reports carry every mode under its name, a
LoRA adapter is merged into its base as FlagEmbedding merges it, and the exports load.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from studio.core.config import bundled_model_path
from studio.evaluation import modes
from studio.evaluation.data import load_eval_data
from studio.facts import modules as finetune

REPO = Path(__file__).resolve().parents[1]
EVAL = REPO / "tests" / "data" / "eval_tiny"


@pytest.fixture(scope="module")
def tiny_m3(tmp_path_factory) -> Path:
    """A 2-layer BERT with the bundled model's tokenizer and M3 heads (random, seeded)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny_m3")
    tok = AutoTokenizer.from_pretrained(str(bundled_model_path()))
    tok.eos_token = tok.sep_token  # FlagEmbedding's M3 training zeroes the EOS weight
    tok.save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(folder)
    torch.save(torch.nn.Linear(32, 16).state_dict(), folder / "colbert_linear.pt")
    torch.save(torch.nn.Linear(32, 1).state_dict(), folder / "sparse_linear.pt")
    return folder


def test_m3_scores_equal_flagembedding_compute_score(tiny_m3, tmp_path):
    """dense, sparse, colbert and hybrid as BGEM3FlagModel.compute_score gives them per pair."""
    from FlagEmbedding import BGEM3FlagModel

    from studio.evaluation import m3
    from studio.evaluation.settings import EncodeSettings

    queries = ["how do I split a path", "sort a list in place", "median of data"]
    passages = [
        "os.path.split(p): Split a pathname into head and tail.",
        "list.sort(): Sort the list in place, stable.",
        "statistics.median(data): Return the median (middle value) of numeric data.",
        "json.dumps(obj): Serialize obj to a JSON formatted str.",
    ]
    settings = EncodeSettings(pooling="cls", normalize=True, query_max_len=16, passage_max_len=32)
    encoder = m3.M3Encoder(tiny_m3, settings, colbert_dim=16)
    q = encoder.encode(queries, 16)
    p = encoder.encode(passages, 32)
    weights = (0.4, 0.2, 0.4)
    mine = m3.scores(q, p, weights)
    fe = BGEM3FlagModel(str(tiny_m3), use_fp16=False, devices="cpu", colbert_dim=16)
    pairs = [(a, b) for a in queries for b in passages]
    theirs = fe.compute_score(
        pairs, max_query_length=16, max_passage_length=32, weights_for_different_modes=list(weights)
    )
    shape = (len(queries), len(passages))
    for mode, name in (
        ("dense", "dense"),
        ("sparse", "sparse"),
        ("colbert", "colbert"),
        ("hybrid", "colbert+sparse+dense"),
    ):
        np.testing.assert_allclose(
            mine[mode], np.asarray(theirs[name]).reshape(shape), atol=1e-5, err_msg=mode
        )
    assert np.abs(mine["sparse"]).sum() > 0  # the sparse head is live, not a row of zeros


def test_m3_report_has_four_modes_before_and_after(tiny_m3, tmp_path, monkeypatch):
    """Base without heads (seeded random heads, with a warning) vs a model with them."""
    from transformers import AutoTokenizer, BertModel

    from studio.core.config import StudioConfig
    from studio.evaluation.module_eval import evaluate_for_module

    monkeypatch.setenv("BGE_STUDIO_CACHE", str(tmp_path / "cache"))
    base = tmp_path / "base"
    BertModel.from_pretrained(str(tiny_m3)).save_pretrained(base)
    AutoTokenizer.from_pretrained(str(tiny_m3)).save_pretrained(base)
    config = StudioConfig(
        args={"colbert_dim": 16, "query_max_len": 16, "passage_max_len": 32},
        module=finetune.M3,
    )
    data = load_eval_data(EVAL)
    models = [{"label": "base", "path": str(base)}, {"label": "final", "path": str(tiny_m3)}]
    report = evaluate_for_module(models, data, config, ks=[1, 10])
    assert list(report["modes"]) == ["dense", "sparse", "colbert", "hybrid"]
    for block in report["modes"].values():
        assert set(block["models"]) == {"base", "final"}
        assert "ndcg_at_10" in block["models"]["final"] and "ndcg_at_10" in block["delta"]
    assert report["models"] == report["modes"]["dense"]["models"]
    assert any("no sparse/ColBERT heads" in w for w in report["warnings"])
    # The same base heads every time (seeded), so "before" is reproducible and cacheable.
    again = evaluate_for_module(models, data, config, ks=[1, 10], use_cache=False)
    assert again["modes"]["colbert"]["models"]["base"]["ndcg_at_10"] == pytest.approx(
        report["modes"]["colbert"]["models"]["base"]["ndcg_at_10"]
    )


def test_evaluation_knows_every_finetune_module():
    """The evaluation's module list is studio.modules': each has a kind, a loader, a verdict
    on decoder-ness that matches the module table."""
    from studio.facts import modules as finetune

    assert tuple(finetune.MODULES) == modes.MODULES
    assert set(modes.LOADERS) == set(finetune.MODULES)
    for name, module in finetune.MODULES.items():
        assert modes.kind_of(name) in modes.MODE_NAMES
        assert modes.is_decoder(name) == module.is_decoder
    assert modes.kind_of(finetune.M3) == "m3" and modes.kind_of(finetune.LAYERWISE) == "reranker"
    assert modes.module_of(None) == finetune.DEFAULT_MODULE


def test_m3_weights_parse_and_refuse():
    from studio.evaluation.m3 import parse_weights

    assert parse_weights("1, 0.3, 1") == (1.0, 0.3, 1.0)
    assert parse_weights(None) == modes.M3_WEIGHTS
    with pytest.raises(ValueError, match="three non-negative numbers"):
        parse_weights("1,2")


def test_rerank_reorders_only_the_first_stage_top_k(tmp_path, monkeypatch):
    """A scorer that prefers the relevant passage lifts it only when the first stage found it."""
    from studio.evaluation import rerank

    monkeypatch.setenv("BGE_STUDIO_CACHE", str(tmp_path / "cache"))
    data = load_eval_data(EVAL)
    stage = rerank.first_stage("bundled:all-MiniLM-L6-v2", data, 3, ks=[1, 3, 10])
    assert all(len(ids) == 3 for ids in stage.ids)
    relevant = {q: set(d for d, r in rel.items() if r > 0) for q, rel in data.qrels.items()}
    doc_of = dict(zip(data.corpus_texts, data.corpus_ids, strict=True))
    qid_of = dict(zip(data.query_texts, data.query_ids, strict=True))

    class Oracle:
        def __init__(self, *args, **kwargs):
            pass

        def score(self, pairs):
            return np.array(
                [1.0 if doc_of[p] in relevant[qid_of[q]] else 0.0 for q, p in pairs], np.float32
            )

    monkeypatch.setattr(rerank, "Scorer", Oracle)
    result = rerank.evaluate_reranker(
        bundled_model_path(), data, stage, rerank.RerankSettings(), ks=[1, 3, 10], use_cache=False
    )
    found = [
        any(d in relevant[q] for d in ids) for q, ids in zip(data.query_ids, stage.ids, strict=True)
    ]
    # Perfect reordering: MRR@3 is 1 exactly where the first stage found a relevant passage.
    assert result.metrics["mrr_at_3"] == pytest.approx(sum(found) / len(found))
    # Nothing outside the top 3 can appear: recall@10 equals the first stage's recall@3.
    assert result.metrics["recall_at_10"] == pytest.approx(stage.result.metrics["recall_at_3"])


def test_adapter_merged_like_flagembedding(tmp_path):
    """A LoRA adapter (with a grown vocabulary in embedding/emb.pth) becomes a plain folder."""
    import sys

    import torch
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import AutoModel, AutoTokenizer

    sys.path.insert(0, str(REPO / "tests"))
    import tiny_llm

    from studio.evaluation.loading import is_adapter, plain_model

    base = tiny_llm.build_llama(tmp_path / "base")
    tok = AutoTokenizer.from_pretrained(str(base))
    tok.add_special_tokens({"additional_special_tokens": ["<instruct>", "<query>"]})
    model = AutoModel.from_pretrained(str(base))
    model.resize_token_embeddings(len(tok))
    out = tmp_path / "run_model"
    (out / "embedding").mkdir(parents=True)
    torch.save(model.embed_tokens, out / "embedding" / "emb.pth")
    lora = get_peft_model(
        model,
        LoraConfig(task_type=TaskType.FEATURE_EXTRACTION, r=4, target_modules=["q_proj", "v_proj"]),
    )
    for name, param in lora.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.5)  # a trained-looking adapter, not a no-op
    lora.save_pretrained(out)
    tok.save_pretrained(out)
    assert is_adapter(out)
    merged = plain_model(out, finetune.DECODER_EMBEDDER, base=base, cache_root=tmp_path / "c")
    assert merged != out and (merged / "config.json").is_file()
    again = AutoModel.from_pretrained(str(merged))
    ids = torch.tensor([tok("<instruct>find\n<query>split a path")["input_ids"]])
    expected = lora.merge_and_unload()(input_ids=ids).last_hidden_state
    torch.testing.assert_close(again(input_ids=ids).last_hidden_state, expected)
    assert (
        plain_model(out, finetune.DECODER_EMBEDDER, base=base, cache_root=tmp_path / "c") == merged
    )


def test_unknown_module_is_a_clear_error():
    with pytest.raises(ValueError, match="embedder.encoder_only.m3"):
        modes.kind_of("embedder.encoder_only.m4")


def test_reranker_export_loads_in_crossencoder_with_flagreranker_scores(tmp_path):
    """CrossEncoder on the exported folder gives FlagReranker's raw scores."""
    import torch
    from FlagEmbedding import FlagReranker
    from sentence_transformers import CrossEncoder
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from studio.core.config import StudioConfig
    from studio.evaluation.export_modes import export_model

    folder = tmp_path / "rr"
    tok = AutoTokenizer.from_pretrained(str(bundled_model_path()))
    tok.save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=1,
    )
    BertForSequenceClassification(config).save_pretrained(folder)
    cfg = StudioConfig(
        args={"model_name_or_path": "bundled:all-MiniLM-L6-v2"}, module=finetune.RERANKER
    )
    result = export_model(folder, cfg, None)
    card = result.card.read_text(encoding="utf-8")
    assert "FlagReranker(" in card and "CrossEncoder(" in card
    pairs = [["split a path", "os.path.split(p): Split a pathname."], ["sort", "json.dumps(obj)"]]
    fe = FlagReranker(str(folder), use_fp16=False, devices="cpu").compute_score(pairs)
    st = CrossEncoder(str(folder), device="cpu").predict([tuple(p) for p in pairs])
    np.testing.assert_allclose(np.asarray(st), np.asarray(fe), atol=1e-5)


def test_eval_data_fixture_is_small():
    data = load_eval_data(EVAL)
    assert 5 <= data.n_queries <= 30 and len(data.corpus_ids) <= 200


def _copy_eval(dest: Path) -> Path:
    shutil.copytree(EVAL, dest)
    return dest


def test_mode_summary_lines():
    from studio.evaluation.module_eval import mode_summary

    report = {
        "compared": ["base", "final"],
        "modes": {
            "dense": {"models": {"base": {"ndcg_at_10": 0.5}, "final": {"ndcg_at_10": 0.6}}},
            "sparse": {"models": {"base": {"ndcg_at_10": 0.2}, "final": {"ndcg_at_10": 0.1}}},
        },
    }
    rows = mode_summary(report)
    assert [r["mode"] for r in rows] == ["dense", "sparse"]
    assert rows[1]["delta"] == pytest.approx(-0.1)
    assert json.dumps(rows)


def test_adapter_card_replaces_peft_template_but_keeps_a_users_readme(tmp_path):
    from studio.core.config import StudioConfig
    from studio.evaluation.export_modes import export_model

    cfg = StudioConfig(
        args={"model_name_or_path": "/models/base-llm", "query_instruction_for_retrieval": "Q"},
        module=finetune.DECODER_EMBEDDER,
    )
    for name, readme, card_name in (
        ("peft", "---\nlibrary_name: peft\n---\n# Model Card for Model ID\n", "README.md"),
        ("user", "# my notes\n", "README.bge-studio.md"),
    ):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "adapter_config.json").write_text('{"base_model_name_or_path": "/models/x"}')
        (folder / "README.md").write_text(readme)
        result = export_model(folder, cfg, None)
        assert result.card.name == card_name
        card = result.card.read_text()
        assert "FlagLLMModel(" in card and "/models/base-llm" in card and "PeftModel" in card
        if name == "user":
            assert (folder / "README.md").read_text() == readme
