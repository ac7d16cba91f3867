"""Each pre-flight rule fires on its case and stays quiet otherwise."""

from __future__ import annotations

import json

import pytest
from conftest import MSMARCO, ROOT, tiny_train_config

from studio.checks import preflight
from studio.core.config import DeepSpeedSettings, TorchrunSettings
from studio.facts.hardware import Gpu, Hardware

CPU = Hardware((), 2)
TWO_V100 = Hardware((Gpu(0, "V100", 16000, 7.0), Gpu(1, "V100", 16000, 7.0)), 8)


def codes(config, hw=CPU, base_dir="."):
    return {p.code: p for p in preflight.run_checks(config, base_dir, hw)}


def test_a_good_config_has_no_errors():
    found = codes(tiny_train_config())
    assert not [p for p in found.values() if p.level == "error"], found
    assert found["report_to"].level == "info"


def test_data_paths(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.csv").write_text("x")
    found = codes(
        tiny_train_config(train_data=["missing.jsonl", "notes.txt", "d"]), base_dir=tmp_path
    )
    assert found["data_missing"].level == "error"
    assert found["data_skipped"].level == "warning"
    assert found["data_empty_dir"].level == "error"


def test_data_paths_say_what_the_data_checker_says(tmp_path):
    """Pre-flight and the data checker share one set of path rules: same words, data_* codes."""
    from studio.datawork.check import check_paths

    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "d" / "deeper").mkdir(parents=True)
    (tmp_path / "d" / "a.jsonl").write_text('{"query": "q", "pos": ["p"], "neg": ["n"]}\n')
    (tmp_path / "d" / "deeper" / "b.jsonl").write_text("{}\n")
    (tmp_path / "empty").mkdir()
    paths = ["missing.jsonl", "notes.txt", "d", "empty"]
    found = codes(tiny_train_config(train_data=paths), base_dir=tmp_path)
    assert found["data_nested"].level == "warning" and "deeper" in found["data_nested"].message
    report = check_paths([tmp_path / p for p in paths])
    checker = {p.code.replace("path_", "data_"): p for p in report.problems}
    for code in ("data_missing", "data_skipped", "data_nested", "data_empty_dir"):
        assert found[code].level == checker[code].level
        assert found[code].fix == checker[code].fix


def test_model_paths():
    assert codes(tiny_train_config(model_name_or_path="./nope"))["model_missing"].level == "error"
    assert (
        codes(tiny_train_config(model_name_or_path="BAAI/bge-small-en"))["model_hub"].level
        == "info"
    )


def test_precision_vs_hardware():
    assert codes(tiny_train_config(bf16=True))["bf16_cpu"].level == "error"
    assert codes(tiny_train_config(fp16=True))["fp16_cpu"].level == "warning"
    assert codes(tiny_train_config(bf16=True), TWO_V100)["bf16_gpu"].level == "error"
    assert "fp16_cpu" not in codes(tiny_train_config(fp16=True), TWO_V100)


def test_processes_vs_gpus():
    cfg = tiny_train_config()
    cfg.torchrun = TorchrunSettings(nproc_per_node=8)
    assert codes(cfg, TWO_V100)["nproc_gpus"].level == "error"
    assert codes(cfg, CPU)["nproc_deepspeed_cpu"].level == "error"  # test_safe_defaults.py
    cfg.deepspeed = None
    assert codes(cfg, CPU)["nproc_gpus"].level == "warning"


def test_deepspeed_warmup_decay_with_zero_warmup(tmp_path):
    ds = tmp_path / "ds.json"
    ds.write_text(
        json.dumps({"scheduler": {"type": "WarmupDecayLR", "params": {"warmup_num_steps": "auto"}}})
    )
    cfg = tiny_train_config(warmup_ratio=None)
    cfg.deepspeed = DeepSpeedSettings(config_file=str(ds))
    assert codes(cfg)["ds_warmup"].level == "error"
    cfg.args["warmup_ratio"] = 0.1
    assert "ds_warmup" not in codes(cfg)
    ds.write_text("{\n  bad json")
    assert "ds.json:2" in codes(cfg)["ds_json"].message


def test_output_dir_not_empty(tmp_path):
    (tmp_path / "model.safetensors").write_text("x")
    assert codes(tiny_train_config(tmp_path))["output_not_empty"].level == "error"
    assert (
        codes(tiny_train_config(tmp_path, overwrite_output_dir=True))["output_overwrite"].level
        == "warning"
    )
    assert "output_not_empty" not in codes(tiny_train_config(tmp_path, resume_from_checkpoint="x"))


def test_fewer_examples_than_a_global_batch():
    rows = sum(1 for line in MSMARCO.read_text().splitlines() if line.strip())
    found = codes(tiny_train_config(per_device_train_batch_size=rows + 1))
    assert (
        found["batch_too_big"].level == "warning"  # a partial batch trains (drop_last off)
        and f"{rows} training examples" in found["batch_too_big"].message
    )
    dropping = tiny_train_config(per_device_train_batch_size=rows + 1, dataloader_drop_last=True)
    assert codes(dropping)["batch_too_big"].level == "error"


def test_mrl_without_dims():
    assert codes(tiny_train_config(use_mrl=True))["mrl_dims"].level == "error"
    assert "mrl_dims" not in codes(tiny_train_config(use_mrl=True, mrl_dims=[64]))


def test_report_to_explicit_is_quiet():
    assert "report_to" not in codes(tiny_train_config(report_to="tensorboard"))


@pytest.mark.parametrize("missing", ["model_name_or_path", "train_data"])
def test_required(missing):
    cfg = tiny_train_config()
    del cfg.args[missing]
    assert {"model_name_or_path": "no_model", "train_data": "no_data"}[missing] in codes(cfg)


def test_evaluate_at_end_needs_eval_data(tmp_path):
    cfg = tiny_train_config()
    cfg.studio = {"evaluate_at_end": True}
    assert codes(cfg)["eval_data_missing"].level == "error"
    cfg.studio["eval_data"] = str(tmp_path / "nope")
    assert "nope" in codes(cfg)["eval_data_missing"].message
    cfg.studio["eval_data"] = "example_data/eval"
    assert "eval_data_missing" not in codes(cfg, base_dir=ROOT)


def _bad_lines_file(folder):
    """Good rows, then a string `pos` and a line that is not JSON: the issue-18 case."""
    good = [line for line in MSMARCO.read_text().splitlines() if line.strip()][:5]
    path = folder / "bad.jsonl"
    path.write_text("\n".join([*good, '{"query":"q","pos":"x","neg":["a"]}', "garbage"]) + "\n")
    return path


def test_bad_rows_are_errors_with_file_line_in_the_data_checkers_words(tmp_path):
    """An empty file and bad lines used to pass pre-flight (a warning, or nothing) and fail the
    run with StopIteration / "Expected object or value at position 23" and no file or line."""
    from studio.datawork.check import check_paths

    (tmp_path / "empty.jsonl").write_text("")
    bad = _bad_lines_file(tmp_path)
    for path, want in ((tmp_path / "empty.jsonl", {None}), (bad, {6, 7})):
        found = preflight.run_checks(tiny_train_config(train_data=[str(path)]), ".", CPU)
        errors = [p for p in found if p.level == "error"]
        assert {p.line for p in errors} == want and {p.file for p in errors} == {str(path)}
        checker = [p for p in check_paths([path], train_group_size=2).problems]
        assert [(p.message, p.fix, p.line) for p in errors] == [
            (p.message, p.fix, p.line) for p in checker if p.level == "error"
        ]
    assert "batch_too_big" not in codes(
        tiny_train_config(train_data=[str(tmp_path / "empty.jsonl")])
    )


def test_a_folder_is_read_one_level_deep_and_json_only(tmp_path):
    (tmp_path / "d" / "deeper").mkdir(parents=True)
    (tmp_path / "d" / "ok.jsonl").write_text(MSMARCO.read_text())
    (tmp_path / "d" / "notes.txt").write_text("garbage\n")
    (tmp_path / "d" / "deeper" / "x.jsonl").write_text("garbage\n")
    assert not [
        p
        for p in codes(tiny_train_config(train_data=[str(tmp_path / "d")])).values()
        if p.level == "error"
    ]
    (tmp_path / "d" / "b.json").write_text("garbage\n")
    assert codes(tiny_train_config(train_data=[str(tmp_path / "d")]))["not_json"].line == 1


def test_a_big_file_is_checked_on_a_stated_sample(tmp_path):
    """Past `studio.preflight_max_mb` a file is not checked, and pre-flight says so."""
    bad = _bad_lines_file(tmp_path)
    cfg = tiny_train_config(train_data=[str(bad)])
    head = sum(len(line) + 1 for line in bad.read_text().splitlines()[:5])
    cfg.studio = {"preflight_max_mb": head / 1e6}
    found = codes(cfg)
    assert "pos_type" not in found and "not_json" not in found
    assert found["sampled"].level == "warning"
    assert "checked the first 5 of 7 lines" in found["sampled"].message
    cfg.studio = {"preflight_max_mb": 0}
    assert "sampled" not in codes(cfg) and "pos_type" in codes(cfg)


def test_many_bad_lines_are_counted_not_all_listed(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text("garbage\n" * 40)
    found = preflight.run_checks(tiny_train_config(train_data=[str(path)]), ".", CPU)
    assert sum(p.code == "not_json" for p in found) == preflight.EXAMPLES_PER_KIND
    assert any(p.code == "data_more" and "40 lines" in p.message for p in found)


def test_rows_are_read_as_the_module_reads_them(tmp_path):
    """A reranker reads the same rows; `train_group_size` 1 reads no negatives (a warning)."""
    from studio.core.config import StudioConfig

    path = tmp_path / "neg.jsonl"
    path.write_text('{"query": "q", "pos": ["p"], "neg": []}\n' * 4)
    args = tiny_train_config(train_data=[str(path)]).args
    reranker = StudioConfig(dict(args), module="reranker.encoder_only.base")
    assert codes(reranker)["neg_empty"].level == "error"
    assert codes(reranker.with_args(train_group_size=1))["neg_unused"].level == "warning"
    kd = tmp_path / "kd.jsonl"
    kd.write_text('{"query": "q", "pos": ["p"], "neg": ["n"], "pos_scores": [1.0]}\n' * 4)
    m3 = StudioConfig(
        dict(args, train_data=[str(kd)], knowledge_distillation=True),
        module="embedder.encoder_only.m3",
    )
    assert codes(m3)["scores_absent"].level == "error"
    assert "scores_absent" not in codes(m3.with_args(knowledge_distillation=False))


def _eval_config(folder):
    cfg = tiny_train_config()
    cfg.studio = {"evaluate_at_end": True, "eval_data": str(folder)}
    return cfg


def test_evaluate_at_end_reads_the_eval_folder_before_the_run(tmp_path):
    """An eval folder without qrels let the run "succeed" with the error only in status.json;
    now pre-flight reads it with the evaluation's own reader and names the file and the fix."""
    import shutil

    folder = tmp_path / "eval"
    shutil.copytree(ROOT / "tests" / "data" / "eval_tiny", folder)
    assert not [p for p in codes(_eval_config(folder)).values() if p.code.startswith("eval")]

    qrels = folder / "qrels" / "test.tsv"
    good = qrels.read_text()
    qrels.write_text(good + "q1\tnot-a-doc\tmany\n")
    bad = codes(_eval_config(folder))["eval_data_bad"]
    assert bad.level == "error" and bad.file == str(qrels) and bad.line
    assert "relevance must be an integer" in bad.message

    qrels.write_text(good + "nosuchquery\td1\t1\n")
    found = codes(_eval_config(folder))
    assert "eval_data_bad" not in found
    assert found["eval_qrels_unknown_query"].level == "warning"

    shutil.rmtree(folder / "qrels")
    bad = codes(_eval_config(folder))["eval_data_bad"]
    assert bad.level == "error" and "no queries and qrels" in bad.message
    assert "qrels/test.tsv" in bad.fix and bad.file == str(folder)


@pytest.mark.parametrize(
    ("values", "code", "field"),
    [
        ({"per_device_train_batch_size": 0}, "batch_not_positive", "per_device_train_batch_size"),
        ({"train_group_size": -5}, "group_not_positive", "train_group_size"),
        ({"train_group_size": 0}, "group_not_positive", "train_group_size"),
        ({"num_train_epochs": 0, "max_steps": None}, "no_training", "num_train_epochs"),
        ({"num_train_epochs": 0, "max_steps": 0}, "no_training", "num_train_epochs"),
    ],
)
def test_values_flagembedding_fails_on_are_errors(values, code, field):
    """They passed pre-flight and failed (or trained 0 steps) only at run time."""
    cfg = tiny_train_config()
    cfg = cfg.with_args(**values)  # None: the field left unset (max_steps: FlagEmbedding's -1)
    found = codes(cfg)[code]
    assert found.level == "error" and found.field == field and field in found.fix


@pytest.mark.parametrize(
    "values",
    [
        {"per_device_train_batch_size": 1, "train_group_size": 1},
        {"num_train_epochs": 0, "max_steps": 2},
        {"num_train_epochs": 0.5, "max_steps": None},
    ],
)
def test_the_smallest_values_that_train_pass(values):
    found = codes(tiny_train_config().with_args(**values))
    assert not {"batch_not_positive", "group_not_positive", "no_training"} & set(found)


def test_many_epochs_over_tiny_data_warns_before_the_run(tmp_path):
    """Issue 20: 150 steps x batch 8 over 20 rows (60 epochs) made the model worse and nothing
    warned. The warning names the arithmetic and the fixes; a short plan stays quiet."""
    rows = ([line for line in MSMARCO.read_text().splitlines() if line.strip()] * 2)[:20]
    data = tmp_path / "twenty.jsonl"
    data.write_text("\n".join(rows) + "\n")
    cfg = tiny_train_config(train_data=[str(data)], max_steps=150, per_device_train_batch_size=8)
    found = codes(cfg)["many_epochs"]
    assert found.level == "warning" and found.field == "max_steps"
    assert "150 steps x batch 8 over 20 rows is 60 epochs" in found.message
    assert "eval_at_save" in found.fix and "fewer steps" in found.fix.lower()
    assert "many_epochs" not in codes(tiny_train_config(train_data=[str(data)], max_steps=5))
    by_epochs = tiny_train_config(train_data=[str(data)], max_steps=-1, num_train_epochs=30)
    assert codes(by_epochs)["many_epochs"].field == "num_train_epochs"
    assert "many_epochs" not in codes(
        tiny_train_config(train_data=[str(data)], max_steps=-1, num_train_epochs=2)
    )
    cfg.studio = {"eval_at_save": True, "eval_data": "example_data/eval"}
    guarded = codes(cfg, base_dir=ROOT)
    assert guarded["many_epochs"].level == "info" and "eval_data_missing" not in guarded
    cfg.studio = {"eval_at_save": True}
    assert codes(cfg)["eval_data_missing"].level == "error"
    cfg.studio = {"eval_at_save": True, "eval_data": "example_data/eval"}
    cfg.studio["general_data"] = "nope"
    assert codes(cfg, base_dir=ROOT)["general_data_missing"].level == "error"
    cfg.studio["general_data"] = "tests/data/eval_tiny"
    assert "general_data_missing" not in codes(cfg, base_dir=ROOT)
    cfg.module = "reranker.encoder_only.base"
    assert codes(cfg, base_dir=ROOT)["eval_at_save_module"].level == "warning"
