"""Importing a shell script: the seed's mistakes are all reported, with lines and fixes."""

from __future__ import annotations

from conftest import SEED_SCRIPT

from studio.hardware import Gpu, Hardware
from studio.script_import import import_script

CPU = Hardware((), 2)


def _seed(base_dir="."):
    return import_script(
        SEED_SCRIPT.read_text(encoding="utf-8"),
        base_dir=base_dir,
        file="model_training.sh",
        hardware=CPU,
    )


def _by_code(result, code):
    return [p for p in result.problems if p.code == code]


def test_seed_script_duplicates_and_suggested_passage_flags():
    dups = {p.field: p for p in _by_code(_seed(), "duplicate")}
    assert set(dups) == {"query_instruction_for_retrieval", "query_instruction_format"}
    qi = dups["query_instruction_for_retrieval"]
    assert "line 14, line 16" in qi.message and "为这个文章生成嵌入表示来供问题检索" in qi.message
    assert "--passage_instruction_for_retrieval" in qi.fix
    assert "--passage_instruction_format" in dups["query_instruction_format"].fix


def test_seed_script_missing_backslash_and_dropped_flags():
    (cut,) = _by_code(_seed(), "missing_backslash")
    assert cut.line == 16
    assert "--query_instruction_format" in cut.message and "--fp16" in cut.message
    assert "16 flag(s)" in cut.message


def test_seed_script_hardware_warnings():
    result = _seed()
    assert (
        _by_code(result, "nproc_gpus")
        and "8 processes" in _by_code(result, "nproc_gpus")[0].message
    )
    assert _by_code(result, "fp16_cpu")[0].line == 19
    with_gpus = import_script(
        SEED_SCRIPT.read_text(),
        file="s.sh",
        hardware=Hardware(tuple(Gpu(i, "H100", 80000, 9.0) for i in range(8))),
    )
    assert not _by_code(with_gpus, "nproc_gpus") and not _by_code(with_gpus, "fp16_cpu")


def test_seed_script_missing_paths_resolved_against_base_dir(tmp_path):
    missing = {p.field: p for p in _by_code(_seed(tmp_path / "work"), "path_missing")}
    assert "../ds_stage0.json" in missing["deepspeed"].message
    assert str(tmp_path / "ds_stage0.json") in missing["deepspeed"].message
    assert "./example_data/retrieval" in missing["train_data"].message
    (tmp_path / "work" / "example_data" / "retrieval").mkdir(parents=True)
    (tmp_path / "ds_stage0.json").write_text("{}")
    assert not _by_code(_seed(tmp_path / "work"), "path_missing")


def test_seed_script_config_keeps_every_flag():
    cfg = _seed().config
    assert cfg.torchrun.nproc_per_node == 8
    assert cfg.args["model_name_or_path"] == "BAAI/bge-large-en-v1.5"
    assert cfg.args["fp16"] is True and cfg.args["kd_loss_type"] == "kl_div"
    assert cfg.args["train_data"] == ["./example_data/retrieval"]
    assert cfg.deepspeed.config_file == "../ds_stage0.json"
    assert len(cfg.args) == 27


def test_unknown_flag_suggestion_env_prefix_and_launchers():
    script = (
        "# comment\nexport WANDB_DISABLED=true\n"
        "CUDA_VISIBLE_DEVICES=0,1 python -m torch.distributed.run --nproc-per-node=2 \\\n"
        "  -m FlagEmbedding.finetune.embedder.encoder_only.base \\\n"
        '\t--model_name_or_path "my model" --learnig_rate 1e-5 \\\n'
        "  --train_data a.jsonl b.jsonl  # trailing comment\n"
    )
    result = import_script(script, hardware=CPU)
    (unknown,) = _by_code(result, "unknown_flag")
    assert unknown.line == 5 and "--learning_rate" in unknown.fix
    assert result.env == {"WANDB_DISABLED": "true", "CUDA_VISIBLE_DEVICES": "0,1"}
    assert result.config.torchrun.nproc_per_node == 2
    assert result.config.args["model_name_or_path"] == "my model"
    assert result.config.args["train_data"] == ["a.jsonl", "b.jsonl"]


def test_deepspeed_launcher_and_no_flags():
    script = (
        "deepspeed --num_gpus 1 --module FlagEmbedding.finetune.embedder.encoder_only.base "
        "--no_normalize_embeddings --model_name_or_path m --train_data d.jsonl\n"
    )
    result = import_script(script, hardware=CPU)
    assert result.config.args["normalize_embeddings"] is False
    assert result.module == "FlagEmbedding.finetune.embedder.encoder_only.base"


def test_not_a_launch_script():
    result = import_script("echo hello\n", hardware=CPU)
    assert _by_code(result, "no_command")
