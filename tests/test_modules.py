"""Every FlagEmbedding fine-tune module: its own schema, config checks, command and form switch.

The schemas come from FlagEmbedding's own dataclasses (through its parser); no model is loaded.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT

from studio.core import command
from studio.core import config as config_mod
from studio.core.module_switch import switch_module
from studio.facts import modules
from studio.facts.schema import argument_dataclasses, load_schema

ALL = list(modules.MODULES)


def test_seven_modules_each_as_its_main_parses_them():
    """The table names the classes each module's __main__ imports (read from FlagEmbedding)."""
    import importlib
    import inspect

    assert len(ALL) == 7 and modules.DEFAULT_MODULE == "embedder.encoder_only.base"
    for name in ALL:
        main = importlib.import_module(f"FlagEmbedding.finetune.{name}.__main__")
        source = inspect.getsource(main)
        model, data, training = argument_dataclasses(name)
        runner = modules.get(name).runner_class()
        for cls in (model, data, training, runner):
            assert getattr(main, cls.__name__, None) is cls or any(
                getattr(main, alias, None) is cls for alias in dir(main)
            ), (name, cls)
        assert runner.__name__ in source


@pytest.mark.parametrize("name", ALL)
def test_schema_is_the_modules_own_dataclasses(name):
    schema = load_schema(name)
    fields = {f.name for cls in argument_dataclasses(name) for f in dataclasses.fields(cls)}
    assert set(schema.fields) == {n for n in fields if n != "_n_gpu"}
    assert schema.module == name
    basic = [f.name for f in schema.basic()]
    assert basic[:3] == ["model_name_or_path", "output_dir", "train_data"]


def test_schemas_differ_where_flagembedding_differs():
    base = load_schema()
    reranker = load_schema("reranker.encoder_only.base")
    m3 = load_schema("embedder.encoder_only.m3")
    layerwise = load_schema("reranker.decoder_only.layerwise")
    decoder = load_schema("embedder.decoder_only.base")
    icl = load_schema("embedder.decoder_only.icl")
    for name in ("temperature", "sentence_pooling_method", "use_mrl", "normalize_embeddings"):
        assert name in base and name not in reranker
    assert {"max_len", "sep_token", "query_instruction_for_rerank"} <= set(reranker.fields)
    assert "colbert_dim" in m3 and m3["colbert_dim"].basic and "colbert_dim" not in base
    assert m3["unified_finetuning"].group == "BGE-M3"
    assert layerwise["model_type"].default == "from_raw_model"
    assert reranker["model_type"].default == "encoder"
    assert decoder["target_modules"].multiple and decoder["use_lora"].default is True
    assert decoder["use_lora"].group == "LoRA & LLM" and decoder["use_lora"].basic
    assert icl["icl_suffix_str"].default == "\nResponse:" and "icl_suffix_str" not in decoder
    assert [f.name for f in reranker.basic()][-4:] == [
        "max_len",
        "query_instruction_for_rerank",
        "passage_instruction_for_rerank",
        "sep_token",
    ]


def test_schema_cache_is_per_module_and_spares_the_import(tmp_path):
    """A start with the seven schemas cached reads them without importing FlagEmbedding."""
    import shutil

    from studio.facts.schema import _cache_file, installed_versions

    for name in ALL:
        load_schema(name)  # built (or read) here, in the cache this test session uses
        cached = _cache_file(installed_versions(), name)
        assert cached.is_file() and name in cached.name
        shutil.copy(cached, tmp_path / cached.name)
    code = (
        "import sys, json; from studio.facts import modules; from studio.facts.schema import load_schema; "
        "n = {m: len(load_schema(m).fields) for m in modules.MODULES}; "
        "print(json.dumps([n, 'FlagEmbedding' in sys.modules, 'torch' in sys.modules]))"
    )
    env = dict(os.environ, BGE_STUDIO_CACHE=str(tmp_path), PYTHONPATH=str(ROOT))
    run = [sys.executable, "-c", code]
    counts, fe, torch = json.loads(
        subprocess.run(run, env=env, capture_output=True, check=True).stdout
    )
    assert counts == {name: len(load_schema(name).fields) for name in ALL}
    assert fe is False and torch is False


def test_schema_cli_lists_a_modules_flags():
    from studio.cli.commands import main

    env_out = subprocess.run(
        [sys.executable, "-m", "studio", "schema", "--module", "reranker.encoder_only.base"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        check=True,
    ).stdout
    names = {line.split()[0] for line in env_out.splitlines() if line and line[0] != "#"}
    assert env_out.startswith("# FlagEmbedding.finetune.reranker.encoder_only.base")
    assert "max_len" in names and "temperature" not in names
    with pytest.raises(SystemExit):
        main(["schema", "--module", "embedder.nope"])


# --------------------------------------------------------------------------- config


def test_a_reranker_config_with_temperature_names_the_line_and_the_module(tmp_path):
    path = tmp_path / "rr.yaml"
    path.write_text(
        "module: reranker.encoder_only.base\n"
        "model_name_or_path: bundled:all-MiniLM-L6-v2\n"
        "temperature: 0.02\n"
        "max_len: 64\n"
    )
    with pytest.raises(config_mod.ConfigError) as err:
        config_mod.load(path)
    (problem,) = err.value.problems
    assert problem.line == 3 and problem.field == "temperature"
    assert "FlagEmbedding.finetune.reranker.encoder_only.base has no such argument" in str(problem)
    assert "module: embedder.encoder_only.base" in problem.fix  # where the flag does exist


def test_unknown_module_is_an_error_with_a_suggestion(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("model_name_or_path: x\nmodule: embedder.encoder_only.m4\n")
    with pytest.raises(config_mod.ConfigError) as err:
        config_mod.load(path)
    (problem,) = err.value.problems
    assert problem.line == 2 and problem.code == "unknown_module"
    assert "embedder.encoder_only.m3" in problem.fix


def test_module_round_trips_and_the_default_stays_implicit(tmp_path):
    cfg, problems = config_mod.parse_text(
        "module: FlagEmbedding.finetune.embedder.encoder_only.m3\ncolbert_dim: 128\n"
    )
    assert not problems and cfg.module == "embedder.encoder_only.m3"
    assert cfg.args == {"colbert_dim": 128}
    assert config_mod.dump(cfg).startswith("module: embedder.encoder_only.m3\n")
    assert cfg.get("unified_finetuning") is False
    base, _ = config_mod.parse_text("max_steps: 3\n")
    assert "module" not in config_mod.dump(base) and base.module == modules.DEFAULT_MODULE


# --------------------------------------------------------------------------- command


def _touch_data(tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text('{"query": "q", "pos": ["p"], "neg": ["n"]}\n')
    return str(data)


@pytest.mark.parametrize("name", ALL)
def test_each_modules_command_parses_with_its_own_parser(name, tmp_path):
    from transformers import HfArgumentParser

    schema = load_schema(name)
    args = {"model_name_or_path": "m", "train_data": [_touch_data(tmp_path)], "max_steps": 4}
    if "max_len" in schema:
        args["max_len"] = 96
    if "colbert_dim" in schema:
        args["colbert_dim"] = 32
    if "target_modules" in schema:
        args["target_modules"] = ["q_proj", "v_proj"]
    cfg = config_mod.StudioConfig(args, module=name)
    script = command.render_script(cfg)
    assert f"-m FlagEmbedding.finetune.{name} \\" in script
    argv = command.flag_argv(cfg)
    parsed = HfArgumentParser(argument_dataclasses(name)).parse_args_into_dataclasses(argv)
    values = {k: v for obj in parsed for k, v in vars(obj).items()}
    assert values["max_steps"] == 4 and values["train_data"] == args["train_data"]
    for key in ("max_len", "colbert_dim", "target_modules"):
        if key in args:
            assert values[key] == args[key]
    launch = command.launch_argv(cfg, "/venv/bin/python", None)
    at = launch.index(command.STUDIO_ENTRY_MODULE)
    assert launch[at + 1 : at + 3] == [modules.ENTRY_FLAG, name]


def test_train_entry_takes_the_module_off_argv():
    from studio.training.train_entry import split_module

    assert split_module(["--finetune_module", "reranker.encoder_only.base", "--x", "1"]) == (
        "reranker.encoder_only.base",
        ["--x", "1"],
    )
    assert split_module(["--x", "1"]) == (modules.DEFAULT_MODULE, ["--x", "1"])
    with pytest.raises(ValueError, match="unknown fine-tune module"):
        split_module(["--finetune_module", "nope"])


# --------------------------------------------------------------------------- switching


def test_switching_keeps_what_applies_and_names_what_is_dropped():
    cfg = config_mod.default_config()
    result = switch_module(cfg, "reranker.encoder_only.base")
    assert result.config.module == "reranker.encoder_only.base"
    assert set(result.dropped) == {"temperature", "sentence_pooling_method", "normalize_embeddings"}
    assert "learning_rate" in result.kept and result.config.args["learning_rate"] == 3e-5
    assert result.config.studio == cfg.studio and result.config.deepspeed == cfg.deepspeed
    assert "dropped 3" in result.message() and "`temperature`" in result.message()
    back = switch_module(result.config, "embedder.encoder_only.m3")
    assert not back.dropped and "nothing dropped" in back.message()


def test_layerwise_model_type_means_something_else():
    cfg = config_mod.StudioConfig(
        {"model_name_or_path": "m", "model_type": "decoder"}, module="reranker.decoder_only.base"
    )
    result = switch_module(cfg, "reranker.decoder_only.layerwise")
    assert "from_finetuned_model" in result.dropped["model_type"]
    kept = switch_module(
        cfg.with_args(model_type="from_finetuned_model"), "reranker.decoder_only.layerwise"
    )
    assert kept.config.args["model_type"] == "from_finetuned_model"


def test_notebook_switch_rebuilds_the_form(tmp_path):
    from studio.notebook import Studio

    st = Studio(ROOT / "example_data" / "quickstart.yaml", runs_dir=tmp_path, base_dir=ROOT)
    try:
        assert "temperature" in st.form.fields and "max_len" not in st.form.fields
        training = st.form.pages()["training"]
        result = st.set_module("reranker.encoder_only.base")
        assert "temperature" in result.dropped
        assert "temperature" not in st.form.fields and "max_len" in st.form.fields
        assert st.form.fields["max_len"] in training.children  # the displayed page changed
        assert "dropped" in st.form.module_message.value
        assert "-m FlagEmbedding.finetune.reranker.encoder_only.base" in st.command_text()
        st.form.module.value = "embedder.encoder_only.m3"  # as picking it in the menu
        assert "colbert_dim" in st.form.fields and st.config().module.endswith("m3")
        assert st.config().args["learning_rate"] == 3e-5
        st.load(ROOT / "example_data" / "quickstart.yaml")
        assert st.form.module.value == modules.DEFAULT_MODULE and "temperature" in st.form.fields
    finally:
        st.close()


def test_post_train_leaves_a_reranker_folder_as_flagembedding_saved_it(tmp_path):
    """No sentence-transformers pooling files (they would make a cross-encoder load as an
    embedder); the card names the reranker loaders."""
    from studio.training.post_train import post_train

    out = tmp_path / "model"
    out.mkdir()
    (out / "config.json").write_text("{}")
    cfg = config_mod.StudioConfig(
        {"model_name_or_path": "m", "output_dir": str(out)}, module="reranker.encoder_only.base"
    )
    config_mod.save(cfg, tmp_path / "config.yaml")
    assert post_train(tmp_path) == 0
    written = sorted(p.name for p in out.iterdir())
    assert "modules.json" not in written and "1_Pooling" not in written, written
    assert "README.md" in written  # the card shows FlagReranker / CrossEncoder, not an embedder
    card = (out / "README.md").read_text()
    assert "FlagReranker(" in card and "SentenceTransformer(" not in card
