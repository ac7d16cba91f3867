"""The schema is FlagEmbedding's: every flag with its type, default, choices and help."""

from __future__ import annotations

import dataclasses

from studio.facts import labels
from studio.facts.schema import argument_dataclasses, build_fields, load_schema


def test_every_dataclass_field_is_in_the_schema():
    schema = load_schema()
    names = {f.name for cls in argument_dataclasses() for f in dataclasses.fields(cls) if f.init}
    assert names <= set(schema.fields)
    assert "_n_gpu" not in schema.fields  # init=False
    assert len(schema.fields) > 150  # all of HF TrainingArguments too


def test_types_defaults_and_choices():
    schema = load_schema()
    assert schema["train_data"].multiple and schema["train_data"].type == "str"
    assert schema["mrl_dims"].multiple and schema["mrl_dims"].type == "int"
    assert schema["sentence_pooling_method"].choices == ("cls", "mean", "last_token")
    assert "cosine" in schema["lr_scheduler_type"].choices  # an enum field
    assert schema["normalize_embeddings"].type == "bool" and schema["normalize_embeddings"].default
    assert schema["learning_rate"].type == "float"
    assert schema["query_max_len"].default == 32
    assert "instruction" in schema["query_instruction_for_retrieval"].help


def test_deprecated_and_secret_fields_are_hidden(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_should_not_appear")
    fields = {f.name: f for f in build_fields()}
    assert fields["token"].hidden and fields["token"].default is None
    assert "hf_should_not_appear" not in repr(fields)
    assert fields["per_gpu_train_batch_size"].hidden and fields["no_cuda"].hidden
    visible = {f.name for f in load_schema().visible()}
    assert "token" not in visible and "learning_rate" in visible


def test_basic_set_is_the_seed_flags_with_chinese_labels():
    schema = load_schema()
    basic = [f.name for f in schema.basic()]
    assert basic[:3] == ["model_name_or_path", "output_dir", "train_data"]
    for name in basic:
        assert labels.label(name, "zh") != labels.label(name, "en") or name not in labels.ZH
        assert name in labels.ZH, f"basic flag {name} lacks a Chinese label"
    groups = schema.groups()
    assert "Optimization" in groups and all(not f.basic for fs in groups.values() for f in fs)
