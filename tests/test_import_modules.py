"""Script import recognises every fine-tune module, the removed pre-1.3 paths and layerwise's
repeated `--model_type`; FlagEmbedding's own example scripts (tests/data/fe_examples, MIT) are
the inputs."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from conftest import ROOT

from studio.checks import preflight
from studio.checks.script_import import import_script
from studio.facts import modules
from studio.facts.hardware import Hardware

EXAMPLES = ROOT / "tests" / "data" / "fe_examples"
SCRIPTS = {
    "embedder/encoder_only/base.sh": "embedder.encoder_only.base",
    "embedder/encoder_only/m3.sh": "embedder.encoder_only.m3",
    "embedder/decoder_only/base.sh": "embedder.decoder_only.base",
    "embedder/decoder_only/icl_same_dataset.sh": "embedder.decoder_only.icl",
    "reranker/encoder_only/base.sh": "reranker.encoder_only.base",
    "reranker/decoder_only/base.sh": "reranker.decoder_only.base",
    "reranker/decoder_only/layerwise.sh": "reranker.decoder_only.layerwise",
}
CPU = Hardware()


def _import(rel: str):
    script = EXAMPLES / rel
    return import_script(
        script.read_text(),
        base_dir=script.parent,
        file=script.name,
        hardware=CPU,
        environ={"HOME": "/home/user"},
    )


@pytest.mark.parametrize("rel", list(SCRIPTS))
def test_flagembeddings_example_imports_to_its_module(rel):
    result = _import(rel)
    assert result.config.module == SCRIPTS[rel]
    codes = {p.code for p in result.problems if p.level == "error"}
    # every flag is the module's own; what is left is this CPU machine (bf16, 2 DeepSpeed procs)
    assert not codes - {"bf16_cpu", "nproc_deepspeed_cpu"}, result.problems
    assert "unknown_flag" not in {p.code for p in result.problems}
    checks = preflight.run_checks(result.config, (EXAMPLES / rel).parent, hardware=CPU)
    assert not [p for p in checks if p.code in ("unknown_key", "data_missing")]


def test_module_specific_flags_land_in_the_config():
    m3 = _import("embedder/encoder_only/m3.sh").config
    assert m3.args["unified_finetuning"] is True and m3.args["self_distill_start_step"] == 0
    icl = _import("embedder/decoder_only/icl_same_dataset.sh").config
    assert icl.args["additional_special_tokens"] == ["<instruct>", "<query>", "<response>"]
    assert icl.args["icl_suffix_str"] == "\\n<response>"  # as bash passes it: no real newline
    reranker = _import("reranker/decoder_only/base.sh").config
    assert reranker.args["target_modules"] == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert reranker.args["query_instruction_for_rerank"] == "A: "


def test_layerwise_repeated_model_type_last_wins_as_argparse_does():
    from transformers import HfArgumentParser

    result = _import("reranker/decoder_only/layerwise.sh")
    (dup,) = [p for p in result.problems if p.code == "duplicate"]
    assert dup.field == "model_type" and dup.line == 29
    assert "the last value wins: 'from_finetuned_model'" in dup.message
    assert "Keep the layerwise one" in dup.fix
    assert result.config.args["model_type"] == "from_finetuned_model"
    model_args_cls = modules.get("reranker.decoder_only.layerwise").classes()[0]
    (parsed,) = HfArgumentParser((model_args_cls,)).parse_args_into_dataclasses(
        [
            "--model_name_or_path",
            "m",
            "--model_type",
            "decoder",
            "--model_type",
            "from_finetuned_model",
        ]
    )
    assert parsed.model_type == result.config.args["model_type"]


@pytest.mark.parametrize(
    ("old", "modern"),
    [
        ("FlagEmbedding.baai_general_embedding.finetune.run", "embedder.encoder_only.base"),
        ("FlagEmbedding.BGE_M3.run", "embedder.encoder_only.m3"),
        ("FlagEmbedding.reranker.run", "reranker.encoder_only.base"),
        ("FlagEmbedding.llm_reranker.finetune_for_instruction.run", "reranker.decoder_only.base"),
        (
            "FlagEmbedding.llm_reranker.finetune_for_layerwise.run",
            "reranker.decoder_only.layerwise",
        ),
        ("FlagEmbedding.llm_dense_retriever.finetune.run", "embedder.decoder_only.base"),
    ],
)
def test_removed_pre_13_paths_name_the_modern_module(old, modern, tmp_path):
    with pytest.raises(ModuleNotFoundError):  # what FlagEmbedding 1.4.2 does with the old path
        importlib.import_module(old)
    (tmp_path / "d.jsonl").write_text('{"query": "q", "pos": ["p"], "neg": ["n"]}\n')
    script = (
        f"torchrun --nproc_per_node 1 \\\n  -m {old} \\\n  --model_name_or_path BAAI/x \\\n"
        "  --train_data d.jsonl \\\n  --learning_rate 1e-5\n"
    )
    result = import_script(script, base_dir=tmp_path, file="old.sh", hardware=CPU)
    (removed,) = [p for p in result.problems if p.code == "removed_module"]
    assert removed.level == "error" and removed.line == 2
    assert f"-m FlagEmbedding.finetune.{modern}" in removed.fix
    assert result.config.module == modern and result.config.args["learning_rate"] == 1e-5


def test_an_unknown_module_is_a_warning_and_a_studio_run_command_keeps_its_module():
    result = import_script(
        "torchrun -m my.trainer --model_name_or_path m\n", file="x.sh", hardware=CPU
    )
    assert {p.code for p in result.problems} >= {"other_module"}
    assert result.config.module == modules.DEFAULT_MODULE
    studio_run = import_script(
        "python -m torch.distributed.run --nproc_per_node 1 -m studio.training.train_entry "
        "--finetune_module reranker.encoder_only.base --model_name_or_path m --max_len 64\n",
        file="run.sh",
        hardware=CPU,
    )
    assert studio_run.config.module == "reranker.encoder_only.base"
    assert studio_run.config.args == {"model_name_or_path": "m", "max_len": 64}
    assert not [p for p in studio_run.problems if p.level == "error"]


def test_legacy_scripts_flags_are_checked_against_the_modern_module(tmp_path):
    script = Path(tmp_path / "old.sh")
    script.write_text(
        "torchrun -m FlagEmbedding.reranker.run --model_name_or_path m --temperature 0.02\n"
    )
    result = import_script(script.read_text(), base_dir=tmp_path, file="old.sh", hardware=CPU)
    unknown = [p for p in result.problems if p.code == "unknown_flag"]
    assert [p.field for p in unknown] == ["temperature"]
