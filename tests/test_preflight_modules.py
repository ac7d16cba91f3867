"""Per-module pre-flight rules; where a rule says FlagEmbedding fails, FlagEmbedding is run here
and fails. Tiny models are built from configs (no weights downloaded); the bundled model's
tokenizer and config stand in for a real encoder."""

from __future__ import annotations

import json

import pytest
from conftest import ROOT

from studio.checks.preflight import run_checks
from studio.core.config import StudioConfig, bundled_model_path
from studio.facts.hardware import Hardware

CPU = Hardware()
BUNDLED = str(bundled_model_path())
LONG = " ".join(["retrieval"] * 700)


def codes(cfg: StudioConfig) -> dict:
    return {p.code: p for p in run_checks(cfg, ROOT, hardware=CPU)}


def _data(tmp_path, text: str = "q") -> str:
    path = tmp_path / "d.jsonl"
    row = {"query": text, "pos": [text], "neg": [text, text]}
    path.write_text(json.dumps(row) + "\n" + json.dumps(row) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    """A 1-layer Llama (q/k/v/o_proj, gate/up/down_proj), saved without a tokenizer."""
    from transformers import LlamaConfig, LlamaModel

    folder = tmp_path_factory.mktemp("tiny-llama")
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    LlamaModel(config).save_pretrained(folder)
    return str(folder)


# --------------------------------------------------------------------------- LoRA, flash-attn


def _decoder_args(model: str, **extra):
    from FlagEmbedding.finetune.embedder.decoder_only.base import DecoderOnlyEmbedderModelArguments

    return DecoderOnlyEmbedderModelArguments(model_name_or_path=model, **extra)


def test_lora_targets_absent_from_the_model(tiny_llama, tmp_path):
    from FlagEmbedding.finetune.embedder.decoder_only.base.load_model import get_model

    with pytest.raises(ValueError, match="not found in the base model"):
        get_model(
            _decoder_args(tiny_llama, target_modules=["query", "value"]), str(tmp_path), False, 0
        )
    cfg = StudioConfig(
        {"model_name_or_path": tiny_llama, "target_modules": ["query", "value"]},
        module="embedder.decoder_only.base",
    )
    error = codes(cfg)["lora_targets_missing"]
    assert error.level == "error" and "q_proj" in error.fix  # the model's own layer names
    partial = codes(cfg.with_args(target_modules=["q_proj", "query"]))["lora_targets_partial"]
    assert partial.level == "warning" and "query" in partial.message
    fine = codes(cfg.with_args(target_modules=None))  # FlagEmbedding's default list
    assert "lora_targets_missing" not in fine and "lora_targets_partial" not in fine
    reranker = cfg.with_args(target_modules=["query"])
    for module in ("reranker.decoder_only.base", "embedder.decoder_only.icl"):
        assert "lora_targets_missing" in codes(StudioConfig(reranker.args, module=module))


def test_flash_attn_without_the_package_or_a_gpu(tiny_llama, tmp_path):
    from FlagEmbedding.finetune.embedder.decoder_only.base.load_model import get_model

    with pytest.raises((ImportError, ValueError), match="(?i)flash"):
        get_model(_decoder_args(tiny_llama, use_flash_attn=True), str(tmp_path), False, 0)
    cfg = StudioConfig(
        {"model_name_or_path": tiny_llama, "use_flash_attn": True},
        module="reranker.decoder_only.base",
    )
    assert codes(cfg)["flash_attn"].level == "error"
    assert "flash_attn" not in codes(cfg.with_args(use_flash_attn=None))


def test_remote_code_model_without_trust_remote_code(tmp_path):
    from FlagEmbedding.finetune.reranker.decoder_only.layerwise import RerankerModelArguments
    from FlagEmbedding.finetune.reranker.decoder_only.layerwise.load_model import get_model

    folder = tmp_path / "minicpm"
    folder.mkdir()
    (folder / "config.json").write_text(
        json.dumps(
            {
                "model_type": "minicpm",
                "auto_map": {"AutoConfig": "configuration_minicpm.MiniCPMConfig"},
            }
        )
    )
    with pytest.raises(ValueError, match="trust_remote_code"):
        get_model(RerankerModelArguments(model_name_or_path=str(folder)), 0)
    cfg = StudioConfig(
        {"model_name_or_path": str(folder)}, module="reranker.decoder_only.layerwise"
    )
    assert codes(cfg)["remote_code"].level == "error"
    assert "remote_code" not in codes(cfg.with_args(trust_remote_code=True))
    hub = StudioConfig(
        {"model_name_or_path": "BAAI/bge-reranker-v2-minicpm-layerwise"},
        module="reranker.decoder_only.layerwise",
    )
    assert codes(hub)["remote_code"].field == "trust_remote_code"
    assert "layerwise_model_type" in codes(hub.with_args(model_type="decoder"))


# --------------------------------------------------------------------------- rerankers


def _reranker_dataset(tmp_path, text: str, **lengths):
    from FlagEmbedding.abc.finetune.reranker import AbsRerankerDataArguments
    from FlagEmbedding.abc.finetune.reranker.AbsDataset import AbsRerankerTrainDataset
    from transformers import AutoTokenizer

    args = AbsRerankerDataArguments(
        train_data=[_data(tmp_path, text)], train_group_size=2, **lengths
    )
    return AbsRerankerTrainDataset(args, AutoTokenizer.from_pretrained(BUNDLED))


def test_reranker_max_len_is_not_what_cuts_the_pair(tmp_path):
    dataset = _reranker_dataset(tmp_path, LONG, query_max_len=32, passage_max_len=64, max_len=16)
    pairs, _ = dataset[0]
    assert {len(p["input_ids"]) for p in pairs} == {96}  # 32 + 64, not max_len 16
    cfg = StudioConfig(
        {"model_name_or_path": BUNDLED, "query_max_len": 32, "passage_max_len": 64, "max_len": 16},
        module="reranker.encoder_only.base",
    )
    problem = codes(cfg)["max_len_unused"]
    assert problem.level == "warning" and "= 96" in problem.message
    assert "max_len_unused" not in codes(cfg.with_args(max_len=96))


def test_reranker_pair_longer_than_the_models_positions(tmp_path):
    import torch
    from transformers import AutoModelForSequenceClassification

    dataset = _reranker_dataset(tmp_path, LONG, query_max_len=300, passage_max_len=300)
    pairs, _ = dataset[0]
    model = AutoModelForSequenceClassification.from_pretrained(BUNDLED, num_labels=1)
    batch = {k: torch.tensor([v]) for k, v in pairs[0].items()}  # as the collator passes it
    assert batch["input_ids"].shape[1] == 600
    with pytest.raises(RuntimeError, match="600.*512|512.*600"):
        model(**batch)
    cfg = StudioConfig(
        {"model_name_or_path": BUNDLED, "query_max_len": 300, "passage_max_len": 300},
        module="reranker.encoder_only.base",
    )
    assert "512 positions" in codes(cfg)["pair_too_long"].message
    assert "pair_too_long" not in codes(cfg.with_args(passage_max_len=200))


# --------------------------------------------------------------------------- BGE-M3


def m3(**args) -> StudioConfig:
    return StudioConfig({"model_name_or_path": BUNDLED, **args}, module="embedder.encoder_only.m3")


def _m3_runner(tmp_path, *flags: str, eos_token: str | None = None):
    """FlagEmbedding's own M3 runner over a tiny BERT with the bundled (BERT) tokenizer."""
    from FlagEmbedding.finetune.embedder.encoder_only.m3 import EncoderOnlyEmbedderM3Runner
    from transformers import AutoTokenizer, BertConfig, BertModel, HfArgumentParser

    from studio.facts.modules import get

    folder = tmp_path / "tiny-bert"
    tokenizer = AutoTokenizer.from_pretrained(BUNDLED)
    if eos_token:
        tokenizer.eos_token = eos_token
    tmp_path.mkdir(exist_ok=True)
    BertModel(
        BertConfig(
            vocab_size=tokenizer.vocab_size,
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
        )
    ).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    argv = [
        "--model_name_or_path", str(folder), "--train_data", _data(tmp_path, "a query"),
        "--output_dir", str(tmp_path / "out"), "--max_steps", "1", "--train_group_size", "2",
        "--per_device_train_batch_size", "1", "--report_to", "none", "--use_cpu", "True",
        *flags,
    ]  # fmt: skip
    parsed = HfArgumentParser(
        get("embedder.encoder_only.m3").classes()
    ).parse_args_into_dataclasses(argv)
    return EncoderOnlyEmbedderM3Runner(*parsed), folder


def test_m3_fix_encoder_without_unified_finetuning_trains_nothing(tmp_path):
    """One step of FlagEmbedding's M3 runner: the backward pass fails."""
    runner, _ = _m3_runner(tmp_path, "--fix_encoder", "True")
    with pytest.raises(RuntimeError, match="does not require grad"):
        runner.trainer.train()
    error = codes(m3(fix_encoder=True))["m3_nothing_to_train"]
    assert error.level == "error"
    assert "m3_nothing_to_train" not in codes(m3(fix_encoder=True, unified_finetuning=True))


def test_m3_unified_finetuning_with_a_tokenizer_without_eos(tmp_path):
    """BERT's tokenizer has no eos_token: M3's sparse head fails on the first step."""
    runner, folder = _m3_runner(tmp_path, "--unified_finetuning", "True")
    with pytest.raises(RuntimeError, match="Could not infer dtype of NoneType"):
        runner.trainer.train()
    found = codes(m3(model_name_or_path=str(folder), unified_finetuning=True))
    assert found["m3_special_tokens"].level == "error"
    assert "eos_token" in found["m3_special_tokens"].message
    config = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps({**config, "eos_token": "[SEP]"}))
    fixed = codes(m3(model_name_or_path=str(folder), unified_finetuning=True))
    assert "m3_special_tokens" not in fixed
    assert "m3_special_tokens" not in codes(m3(model_name_or_path=str(folder)))  # dense only
    runner, _ = _m3_runner(tmp_path / "fixed", "--unified_finetuning", "True", eos_token="[SEP]")
    assert runner.trainer.train().global_step == 1  # the fix the problem names works


def test_m3_self_distill_and_kd_loss_combinations():
    found = codes(m3(use_self_distill=True))
    assert found["m3_distill_unused"].level == "warning"
    assert found["m3_dense_only"].level == "info"
    late = codes(
        m3(unified_finetuning=True, use_self_distill=True, self_distill_start_step=9, max_steps=10)
    )
    assert "never happens" in late["m3_distill_never"].message
    ok = codes(m3(unified_finetuning=True, use_self_distill=True, self_distill_start_step=0))
    assert not {"m3_distill_never", "m3_distill_unused", "m3_dense_only"} & set(ok)
    assert "kd_loss_unused" in codes(m3(kd_loss_type="m3_kd_loss"))
    assert "kd_loss_unused" not in codes(m3(kd_loss_type="m3_kd_loss", knowledge_distillation=True))
    base = StudioConfig({"model_name_or_path": BUNDLED, "kd_loss_type": "m3_kd_loss"})
    assert "kd_loss_unused" in codes(base)
    assert "m3_dense_only" not in codes(base)  # M3 rules stay with M3


def test_m3_kd_loss_without_teacher_scores_is_the_plain_loss():
    """kd_loss_type only matters with teacher scores: FlagEmbedding's loss is identical."""
    import torch
    from FlagEmbedding.finetune.embedder.encoder_only.base import BiEncoderOnlyEmbedderModel
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(BUNDLED)
    base = AutoModel.from_pretrained(BUNDLED)
    q = tokenizer(["a query", "another"], return_tensors="pt", padding=True)
    p = tokenizer(["pos", "neg", "pos 2", "neg 2"], return_tensors="pt", padding=True)
    losses = []
    for kind in ("kl_div", "m3_kd_loss"):
        model = BiEncoderOnlyEmbedderModel(base, tokenizer=tokenizer, kd_loss_type=kind)
        model.train()
        torch.manual_seed(0)
        losses.append(model(queries=q, passages=p, teacher_scores=None).loss.item())
    assert losses[0] == pytest.approx(losses[1])
