"""The end check of a run (studio.train_outcome): what training produced, logged steps or not.

Unit tests over saved weight files as FlagEmbedding and PEFT write them (a single file, shards,
a LoRA adapter, a merged model, a torch .bin); the real run that diverges without logging a
step is in tests/test_faults.py, the healthy real run in tests/test_runs.py.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import save_file

from studio.training import train_outcome
from studio.training.train_outcome import TrainingOutcomeError


def trainer(output_dir: Path, global_step=6, max_steps=6, train_loss=0.7, **args):
    run_args = {
        "output_dir": str(output_dir),
        "learning_rate": 2e-5,
        "logging_steps": 1,
        "num_train_epochs": 1.0,
        "fp16": False,
        **args,
    }
    history = [{"loss": 0.8, "step": 1}]
    if train_loss is not None:
        history.append({"train_loss": train_loss, "train_runtime": 1.0})
    state = SimpleNamespace(global_step=global_step, max_steps=max_steps, log_history=history)
    return SimpleNamespace(args=SimpleNamespace(**run_args), state=state)


def weights(n: int, bad: float | None = None, count: int = 0) -> torch.Tensor:
    tensor = torch.ones(n)
    if bad is not None:
        tensor[:count] = bad
    return tensor


def test_a_healthy_model_passes_and_the_line_says_what_was_read(tmp_path):
    save_file(
        {"a": weights(10), "b": weights(5).half(), "ids": torch.arange(3)},
        tmp_path / "model.safetensors",
    )
    line = train_outcome.check(trainer(tmp_path))
    assert line.startswith("end check: 6 steps trained, train_loss 0.7000, all 18 weights finite")
    assert "3 tensors (model.safetensors, read in" in line


def test_nan_weights_fail_with_counts_file_cause_and_logging_hint(tmp_path):
    save_file({"a": weights(10, math.nan, 4), "b": weights(5)}, tmp_path / "model.safetensors")
    with pytest.raises(TrainingOutcomeError) as caught:
        train_outcome.check(
            trainer(tmp_path, learning_rate=1e6, logging_steps=500, train_loss=math.nan)
        )
    message = str(caught.value)
    assert message.startswith(
        "the saved model has 4 NaN weights in 1 of 2 tensors (model.safetensors)"
    )
    assert "training diverged" in message and "train_loss is nan" in message
    assert "learning_rate 1e+06 is far above" in message
    assert "logging_steps 500 > the 6 steps trained" in message and "\n" not in message


def test_shards_and_a_lora_adapter_are_all_read(tmp_path):
    save_file({"a": weights(8)}, tmp_path / "model-00001-of-00002.safetensors")
    save_file({"b": weights(8, math.inf, 2)}, tmp_path / "model-00002-of-00002.safetensors")
    save_file({"lora_A": weights(4, -math.inf, 1)}, tmp_path / "adapter_model.safetensors")
    (tmp_path / "checkpoint-3").mkdir()  # a checkpoint is not the final model: not read
    save_file({"c": weights(4, math.nan, 4)}, tmp_path / "checkpoint-3" / "model.safetensors")
    with pytest.raises(TrainingOutcomeError) as caught:
        train_outcome.check(trainer(tmp_path))
    message = str(caught.value)
    assert "has 3 inf weights in 2 of 3 tensors (adapter_model.safetensors, " in message
    assert "model-00001-of-00002.safetensors, model-00002-of-00002.safetensors)" in message
    assert "NaN" not in message.split(":")[0]


def test_a_merged_lora_model_and_torch_bin_files_are_read(tmp_path):
    (tmp_path / "merged_model").mkdir()
    save_file({"w": weights(6, math.nan, 6)}, tmp_path / "merged_model" / "model.safetensors")
    torch.save({"linear.weight": weights(3, math.nan, 1)}, tmp_path / "colbert_linear.pt")
    census = train_outcome.census(train_outcome.weight_files(tmp_path))
    assert (census.nan, census.bad_tensors, census.tensors) == (7, 2, 2)


def test_a_nan_train_loss_with_finite_weights_fails(tmp_path):
    save_file({"a": weights(4)}, tmp_path / "model.safetensors")
    with pytest.raises(TrainingOutcomeError, match=r"^train_loss is nan \(NaN/inf\)"):
        train_outcome.check(trainer(tmp_path, train_loss=math.nan))


def test_zero_steps_fail_unless_the_run_only_merges_a_lora_model(tmp_path):
    save_file({"a": weights(4)}, tmp_path / "model.safetensors")
    untrained = trainer(tmp_path, global_step=0, max_steps=0, train_loss=0.0, num_train_epochs=0.0)
    with pytest.raises(TrainingOutcomeError) as caught:
        train_outcome.check(untrained)
    message = str(caught.value)
    assert message.startswith("0 training steps ran (max_steps 0, num_train_epochs 0.0)")
    assert "the base model, untrained" in message and "num_train_epochs to 1 or more" in message
    assert "0 steps trained" in train_outcome.check(untrained, trains=False)


def test_no_weights_file_is_said_and_fails_nothing(tmp_path):
    line = train_outcome.check(trainer(tmp_path))
    assert "no weights file found" in line and str(tmp_path) in line


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
def test_nan_and_inf_are_counted_apart_in_every_float_type(dtype):
    tensor = torch.tensor([1.0, math.nan, math.inf, -math.inf, -2.5, math.nan, 0.0], dtype=dtype)
    assert train_outcome.non_finite(tensor) == (2, 2)
    assert train_outcome.non_finite(torch.ones(5, dtype=dtype)) == (0, 0)
    assert train_outcome.non_finite(tensor[::2]) == (0, 1)  # a strided view: 1, inf, -2.5, 0


def test_an_unreadable_weights_file_is_said_and_fails_nothing(tmp_path):
    save_file({"a": weights(4)}, tmp_path / "model.safetensors")
    (tmp_path / "adapter_model.safetensors").write_bytes(b"not a safetensors file")
    line = train_outcome.check(trainer(tmp_path))
    assert "all 4 weights finite in 1 tensors (model.safetensors" in line
    assert "not readable, so not checked: adapter_model.safetensors (" in line
