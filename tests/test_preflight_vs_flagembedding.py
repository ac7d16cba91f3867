"""Where pre-flight says FlagEmbedding would fail, FlagEmbedding itself fails (in-process, cheap).

Pre-flight refuses a batch under 1, a group under 1 and a run with no epochs and no steps
(studio.preflight.training_value_problems). Each test gives the same value to FlagEmbedding's own
code (its dataset, its runner and the HF Trainer it builds) and shows what a run would meet:
an exception at the first batch or row, or 0 steps trained. The smallest accepted values load
and train, so the rule is no wider than FlagEmbedding's failure.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import MSMARCO, tiny_train_config

from studio.checks import preflight
from studio.core.config import BUNDLED_MODEL, resolve_model
from studio.facts.hardware import Hardware

CPU = Hardware((), 2)


@pytest.fixture(scope="module")
def model() -> str:
    return str(resolve_model(BUNDLED_MODEL, Path(".")))


def refused(**values) -> set[str]:
    cfg = tiny_train_config().with_args(**values)
    return {p.code for p in preflight.run_checks(cfg, ".", CPU) if p.level == "error"}


def test_a_group_under_1_fails_at_flagembeddings_first_row(model, tmp_path):
    from FlagEmbedding.abc.finetune.embedder.AbsArguments import AbsEmbedderDataArguments
    from FlagEmbedding.abc.finetune.embedder.AbsDataset import AbsEmbedderTrainDataset
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)

    def first_row(group: int):
        args = AbsEmbedderDataArguments(
            train_data=[str(MSMARCO)], train_group_size=group, cache_path=str(tmp_path)
        )
        return AbsEmbedderTrainDataset(args, tokenizer)[0]

    for group in (-5, 0):
        with pytest.raises(ValueError, match="Sample larger than population or is negative"):
            first_row(group)
        assert "group_not_positive" in refused(train_group_size=group)
    query, passages, *_ = first_row(1)
    assert len(passages) == 1 and "group_not_positive" not in refused(train_group_size=1)


def test_a_batch_under_1_fails_and_no_epochs_trains_0_steps(model, tmp_path):
    from studio.training import train_entry

    def runner(name: str, **flags):
        argv = ["--model_name_or_path", model, "--train_data", str(MSMARCO)]
        argv += ["--output_dir", str(tmp_path / name), "--cache_path", str(tmp_path / "cache")]
        argv += ["--train_group_size", "2", "--query_max_len", "16", "--passage_max_len", "16"]
        argv += ["--save_strategy", "no", "--report_to", "none"]
        for flag, value in flags.items():
            argv += [f"--{flag}", str(value)]
        return train_entry.build_runner(argv)

    with pytest.raises(ValueError, match="batch_size should be a positive integer"):
        runner("batch0", per_device_train_batch_size=0).trainer.train()
    assert "batch_not_positive" in refused(per_device_train_batch_size=0)

    trained = runner("epochs0", per_device_train_batch_size=2, num_train_epochs=0).trainer.train()
    assert trained.global_step == 0  # "succeeded", nothing learned
    assert "no_training" in refused(num_train_epochs=0, max_steps=None)
    assert "no_training" not in refused(num_train_epochs=0, max_steps=1)
