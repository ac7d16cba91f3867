"""Rules that agreed with their own text but not with what happens (issue 10, items 6 and 7).

Each test here fails on the code before its fix.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
from conftest import tiny_train_config

from studio.checks import preflight
from studio.core import command, config, form
from studio.core.config import DeepSpeedSettings, StudioConfig, TorchrunSettings
from studio.facts.hardware import Hardware
from studio.training import runs

CPU = Hardware((), 2)


def _codes(cfg, base_dir="."):
    return {p.code: p for p in preflight.run_checks(cfg, base_dir, CPU)}


def test_preflight_refuses_what_the_entry_point_refuses(monkeypatch):
    """2 processes + DeepSpeed on a CPU machine: an error before Start, as train_entry says."""
    import torch

    from studio.training.train_entry import prepare_cpu_world

    cfg = tiny_train_config()
    cfg.torchrun = TorchrunSettings(nproc_per_node=2)
    problem = _codes(cfg)["nproc_deepspeed_cpu"]
    assert problem.level == "error" and "nproc_per_node` to 1" in problem.fix
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    argv = command.flag_argv(cfg, ds_path="ds.json")
    with pytest.raises(ValueError, match="one process only"):
        prepare_cpu_world(argv, {"WORLD_SIZE": "2"})
    # without DeepSpeed both agree it runs (as DDP over gloo): a warning, and no refusal
    cfg.deepspeed = None
    assert _codes(cfg)["nproc_gpus"].level == "warning"
    env = {"WORLD_SIZE": "2"}
    prepare_cpu_world(command.flag_argv(cfg), env)
    assert env["ACCELERATE_USE_CPU"] == "true"


def test_output_dir_rule_says_flagembedding_ignores_overwrite_output_dir(tmp_path):
    (tmp_path / "model.safetensors").write_text("x")
    blocked = _codes(tiny_train_config(tmp_path))["output_not_empty"]
    assert "ignores `overwrite_output_dir`" in blocked.message
    consented = _codes(tiny_train_config(tmp_path, overwrite_output_dir=True))["output_overwrite"]
    assert "FlagEmbedding ignores it" in consented.message
    assert "will be overwritten (`overwrite_output_dir` is on)" not in consented.message
    import FlagEmbedding

    source = Path(FlagEmbedding.__file__).parent
    assert not any("overwrite_output_dir" in p.read_text() for p in source.rglob("*.py"))


def test_a_batch_larger_than_the_data_trains_unless_dropped(tmp_path):
    data = tmp_path / "three.jsonl"
    data.write_text('{"query": "q", "pos": ["p"], "neg": ["n"]}\n' * 3)
    partial = _codes(tiny_train_config(train_data=[str(data)], per_device_train_batch_size=8))
    assert partial["batch_too_big"].level == "warning" and "partial batch of 3" in (
        partial["batch_too_big"].message
    )
    dropped = _codes(
        tiny_train_config(
            train_data=[str(data)], per_device_train_batch_size=8, dataloader_drop_last=True
        )
    )
    assert dropped["batch_too_big"].level == "error"


def test_empty_neg_is_fine_with_a_group_of_one(tmp_path):
    from studio.datawork.check import check_paths

    data = tmp_path / "d.jsonl"
    data.write_text('{"query": "q", "pos": ["p"], "neg": []}\n')
    assert check_paths([data], train_group_size=2).has_errors
    one = check_paths([data], train_group_size=1)
    assert not one.has_errors and one.counts == {"neg_unused": 1}


def test_resume_true_skips_a_half_written_checkpoint(tmp_path):
    from studio.training.train_entry import resolve_resume

    done = tmp_path / "checkpoint-4"
    done.mkdir()
    (done / "trainer_state.json").write_text("{}")
    half = tmp_path / "checkpoint-8"
    half.mkdir()
    (half / "model.safetensors").write_text("")  # the save was cut before trainer_state.json
    assert resolve_resume("True", str(tmp_path)) == str(done)
    cfg_dir = tmp_path / "run"
    cfg_dir.mkdir()
    config.save(StudioConfig({"output_dir": str(tmp_path)}), cfg_dir / "config.yaml")
    assert runs.last_checkpoint(cfg_dir) == done  # the run manager agrees


@pytest.mark.parametrize(
    "text, field",
    [
        ("torchrun: {nproc_per_node: 0}\n", "torchrun.nproc_per_node"),
        ("torchrun: {nnodes: 0}\n", "torchrun.nnodes"),
        ("torchrun: {master_port: 99999}\n", "torchrun.master_port"),
        ("learning_rate: .nan\n", "learning_rate"),
        ("learning_rate: nan\n", "learning_rate"),
        ("warmup_ratio: .inf\n", "warmup_ratio"),
    ],
)
def test_config_refuses_values_torchrun_and_training_cannot_use(text, field):
    cfg, problems = config.parse_text(text, file="c.yaml")
    assert [p.field for p in problems if p.level == "error"] == [field], problems
    assert all(not (isinstance(v, float) and not math.isfinite(v)) for v in cfg.args.values())


def test_forms_refuse_torchrun_values_out_of_range():
    launch = form.config_to_launch(StudioConfig())
    _, problems = form.values_to_config({}, {**launch, "master_port": 99999})
    assert [p.field for p in problems] == ["torchrun.master_port"]


def test_form_round_trip_keeps_deepspeed_precision():
    cfg = StudioConfig({}, TorchrunSettings(), DeepSpeedSettings(stage=2, precision="bf16"))
    launch = form.config_to_launch(cfg)
    back, problems = form.values_to_config({}, launch)
    assert not problems and back.deepspeed.precision == "bf16" and back.deepspeed.stage == 2


def test_evaluate_tab_reads_cutoffs_as_the_core_does():
    from studio.app.actions import cutoffs
    from studio.evaluation.metrics import parse_ks

    for text in ("1 5 10", "1,5,10", "10, 5 1"):
        assert cutoffs(text) == parse_ks(text) == [1, 5, 10]
    with pytest.raises(ValueError):
        cutoffs("1 five")


def test_attach_keeps_a_browser_given_name_inside_the_runs_folder(tmp_path):
    runs_dir = tmp_path / "runs"
    (runs_dir / "mine").mkdir(parents=True)
    (runs_dir / "mine" / "status.json").write_text("{}")
    other = tmp_path / "elsewhere" / "theirs"
    other.mkdir(parents=True)
    (other / "status.json").write_text("{}")
    os.symlink(other, runs_dir / "link")
    assert runs.run_in(runs_dir, "mine") == (runs_dir / "mine").resolve()
    for name in ("../elsewhere/theirs", str(other), "link", "..", "mine/..", "", None):
        assert runs.run_in(runs_dir, name) is None, name
    from conftest import web_handler

    from studio.webui.app import AppContext, build_app

    demo = build_app(AppContext(runs_dir=runs_dir, base_dir=tmp_path))
    shown = web_handler(demo, "attach")("../elsewhere/theirs")
    assert shown[demo.registry["session.watcher"]] is None
