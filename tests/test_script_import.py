"""Importing a shell script: the seed's mistakes are all reported, with lines and fixes."""

from __future__ import annotations

from pathlib import Path

from conftest import FE_EXAMPLES, SEED_SCRIPT

from studio.checks.script_import import import_script
from studio.facts.hardware import Gpu, Hardware

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
    assert (
        "line 14, line 16" in qi.message
        and "Represent this passage for question retrieval" in qi.message
    )
    assert "--passage_instruction_for_retrieval" in qi.fix
    assert "--passage_instruction_format" in dups["query_instruction_format"].fix


def test_seed_script_missing_backslash_and_dropped_flags():
    (cut,) = _by_code(_seed(), "missing_backslash")
    assert cut.line == 16
    assert "--query_instruction_format" in cut.message and "--fp16" in cut.message
    assert "16 flag(s)" in cut.message


def test_seed_script_hardware_warnings():
    result = _seed()
    # 8 processes and --deepspeed with no GPU: the entry point would refuse it (pre-flight agrees)
    (nproc,) = _by_code(result, "nproc_deepspeed_cpu")
    assert nproc.level == "error" and "8 processes" in nproc.message and nproc.line == 1
    assert _by_code(result, "fp16_cpu")[0].line == 19
    with_gpus = import_script(
        SEED_SCRIPT.read_text(),
        file="s.sh",
        hardware=Hardware(tuple(Gpu(i, "H100", 80000, 9.0) for i in range(8))),
    )
    assert not [p for p in with_gpus.problems if p.code.startswith(("nproc", "fp16"))]


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


# FlagEmbedding's own example scripts build the command in quoted variables and `eval $cmd`.
ENV = {"HOME": "/home/ada"}  # the only variable they take from the environment


def _example(path: str, environ=ENV):
    script = FE_EXAMPLES / path
    return import_script(
        script.read_text(), base_dir=script.parent, file=path, hardware=CPU, environ=environ
    )


def test_fe_example_expands_every_flag_and_path():
    result = _example("embedder/encoder_only/base.sh")
    args = result.config.args
    # the one error: 2 processes with DeepSpeed on this CPU-only machine (a GPU machine: none)
    assert [(p.code, p.line) for p in result.problems if p.level == "error"] == [
        ("nproc_deepspeed_cpu", 57)
    ]
    assert result.module == "FlagEmbedding.finetune.embedder.encoder_only.base"
    assert result.config.torchrun.nproc_per_node == 2  # $num_gpus
    assert args["train_data"] == [  # $train_data, a multi-line quoted variable
        "../example_data/retrieval",
        "../example_data/sts/sts.jsonl",
        "../example_data/classification-no_in_batch_neg",
        "../example_data/clustering-no_in_batch_neg",
    ]
    assert args["cache_dir"] == "/home/ada/.cache/huggingface/hub"  # if [ -z ]; export; $HOME
    assert args["cache_path"] == "/home/ada/.cache"  # ~ inside a quoted variable, read by eval
    assert args["query_instruction_for_retrieval"] == (
        "Represent this sentence for searching relevant passages: "
    )  # single quotes inside the double-quoted variable group the words, as eval does
    assert args["num_train_epochs"] == 4 and args["per_device_train_batch_size"] == 2
    assert result.config.deepspeed.config_file == "../../ds_stage0.json"
    assert len(args) == 27
    values = [str(v) for v in args.values() if not isinstance(v, list)] + args["train_data"]
    assert not [v for v in values if "$" in v or "~" in v or "'" in v or "\\" in v]
    # relative paths resolve from the script's folder, where the copied data lies
    assert not [p for p in result.problems if p.code == "path_missing"]
    assert result.env == {
        "WANDB_MODE": "disabled",
        "HF_HUB_CACHE": "/home/ada/.cache/huggingface/hub",
    }


def test_fe_example_flags_keep_the_line_they_were_written_on():
    result = _example("embedder/encoder_only/base.sh")
    fp16 = next(p for p in result.problems if p.code == "fp16_cpu")
    assert fp16.line == 41  # `--fp16` inside training_args, not the `eval $cmd` line
    lines = (FE_EXAMPLES / "embedder/encoder_only/base.sh").read_text().splitlines()
    assert lines[fp16.line - 1].strip() == "--fp16 \\"


def test_environment_variables_are_warnings_naming_the_line():
    result = _example("embedder/encoder_only/base.sh")
    home = [p for p in result.problems if p.code == "env_variable"]
    assert {p.line for p in home} == {17, 27}  # $HOME in the if block, ~ in data_args
    assert all(p.level == "warning" and "/home/ada" in p.message for p in home)
    with_cache = _example(
        "embedder/encoder_only/base.sh", {"HOME": "/h", "HF_HUB_CACHE": "/data/hub"}
    )
    assert with_cache.config.args["cache_dir"] == "/data/hub"  # the if branch is not taken
    cache = [p for p in with_cache.problems if p.code == "env_variable" and "HF_HUB" in p.message]
    assert [p.line for p in cache] == [16, 22]  # the `if [ -z ]` test and `--cache_dir`


def test_every_fe_example_script_imports_its_command():
    for path, module, flag in [
        ("embedder/encoder_only/m3.sh", "embedder.encoder_only.m3", "kd_loss_type"),
        ("embedder/decoder_only/base.sh", "embedder.decoder_only.base", "query_max_len"),
        ("embedder/decoder_only/icl_same_dataset.sh", "embedder.decoder_only.icl", "output_dir"),
        ("reranker/encoder_only/base.sh", "reranker.encoder_only.base", "train_group_size"),
        ("reranker/decoder_only/base.sh", "reranker.decoder_only.base", "learning_rate"),
        ("reranker/decoder_only/layerwise.sh", "reranker.decoder_only.layerwise", "cache_path"),
    ]:
        result = _example(path)
        assert result.module == "FlagEmbedding.finetune." + module, path
        assert not [p for p in result.problems if p.code == "quote"], path
        assert flag in result.config.args, path
        values = repr(result.config.args)
        assert "$" not in values and "~/" not in values, (path, values)
        assert result.config.torchrun.nproc_per_node == 2, path


def test_unresolved_variables_are_kept_and_named():
    script = (
        'OUT=/runs\nDATA_DIR="$HOME/data"\n'
        "torchrun --nproc_per_node 1 -m FlagEmbedding.finetune.embedder.encoder_only.base \\\n"
        "  --model_name_or_path m --train_data $DATA_DIR/a.jsonl ${TRAIN_EXTRA} \\\n"
        "  --output_dir ${OUT}/run1 --learning_rate $1\n"
    )
    result = import_script(script, hardware=CPU, environ={})
    args = result.config.args
    assert args["output_dir"] == "/runs/run1"
    assert args["train_data"] == ["$HOME/data/a.jsonl", "${TRAIN_EXTRA}"]
    unresolved = {
        p.message.split("`")[1]: p.line for p in result.problems if p.code == "unresolved_variable"
    }
    assert unresolved == {"$HOME": 2, "${TRAIN_EXTRA}": 4, "$1": 5}


def test_eval_without_quotes_inside_and_plain_dollar_cmd():
    # `$cmd` alone is split but its quotes are not read again (bash); `eval` reads them.
    base = (
        "cmd=\"torchrun -m FlagEmbedding.finetune.embedder.encoder_only.base --output_dir 'a b'\"\n"
    )
    assert (
        import_script(base + "eval $cmd\n", hardware=CPU, environ={}).config.args["output_dir"]
        == "a b"
    )
    plain = import_script(base + "$cmd\n", hardware=CPU, environ={})
    assert plain.config.args["output_dir"] in ("'a", "b'")  # bash passes 'a and b' apart


def test_unclosed_quote_is_an_error_naming_its_line():
    script = "torchrun -m FlagEmbedding.finetune.embedder.encoder_only.base \\\n  --output_dir 'x\n"
    (quote,) = [
        p for p in import_script(script, hardware=CPU, environ={}).problems if p.code == "quote"
    ]
    assert quote.level == "error" and quote.line == 2


def test_imported_m3_config_reads_its_paths_from_any_working_folder(tmp_path, monkeypatch, capsys):
    """Issue 18: FlagEmbedding's m3.sh imported with 0 path errors, then `check` started in
    another folder found 5 missing paths. The config records the script's folder (relative to
    the config file), so `check` and `command` read the same files from anywhere."""
    from studio.cli.commands import main
    from studio.core import config

    script = FE_EXAMPLES / "embedder/encoder_only/m3.sh"
    out = tmp_path / "configs" / "m3.yaml"
    monkeypatch.setenv("HOME", "/home/ada")
    main(["import-script", str(script), "--base-dir", str(script.parent), "--out", str(out)])
    assert "base_dir: ../" in out.read_text()  # relative to the config: the pair can move
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    capsys.readouterr()
    main(["check", str(out)])
    checked = capsys.readouterr().out
    assert "does not exist" not in checked  # today: 5 (4 train_data, the DeepSpeed JSON)
    assert "1 error(s)" in checked  # the one left: 2 processes with DeepSpeed on this CPU

    assert main(["command", str(out)]) == 0
    script_text = capsys.readouterr().out
    data = (FE_EXAMPLES / "embedder/example_data/retrieval").resolve()
    assert str(data) in script_text  # the preview shows the paths the run will read
    assert str((script.parent / "test_encoder_only_m3_bge-m3").resolve()) in script_text
    resolved = config.resolve_paths(config.load(out), ".")
    assert resolved.deepspeed.config_file == str((FE_EXAMPLES / "ds_stage0.json").resolve())
    assert all(Path(p).exists() for p in resolved.args["train_data"])

    # the web UI and the notebook: a workspace elsewhere reads the same files, and a config
    # saved from the form keeps its base (relative to where it is saved)
    from studio.app import actions
    from studio.core import form

    ws = actions.Workspace.at(tmp_path / "runs", elsewhere)
    loaded = actions.load_config(ws, out)
    checked = actions.check_form(ws, loaded)
    assert not [p for p in checked.problems if "does not exist" in p.message]
    assert str(data) in checked.script
    studio_keys, problems = form.studio_from_widgets(form.studio_to_widgets(loaded))
    assert studio_keys["base_dir"] == str(script.parent.resolve()) and not problems
    saved = actions.save_config(ws, loaded, "saved/m3.yaml", overwrite=False)
    assert (
        config.resolve_paths(config.load(saved), tmp_path).args["train_data"]
        == (resolved.args["train_data"])
    )
