"""The checker's verdicts, checked against FlagEmbedding itself rather than against its own text.

Every fixture under tests/data/bad/ (and the knowledge-distillation dtype mix in kd_mix/) goes
through FlagEmbedding's own dataset (`AbsEmbedderTrainDataset`: datasets' JSON loader, the
column handling and `concatenate_datasets`) and collator (the tokenizer), every row sampled
several times, as training does. What the checker calls an error must fail there; what it
lets through (warnings and info included) must load.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from studio.core.config import BUNDLED_MODEL, resolve_model
from studio.datawork.check import check_paths

BAD = Path(__file__).parent / "data" / "bad"
SAMPLES_PER_ROW = 8  # FlagEmbedding samples positives/negatives at random: try several


def _cases():
    for path in sorted(BAD.rglob("*")):
        if path.parent.name == "kd_mix":
            continue
        if path.is_dir() and path.name == "kd_mix":
            yield path, True, 2
            continue
        if path.suffix not in (".json", ".jsonl"):
            continue
        kd = path.parent.name == "kd"
        yield path, kd, 2
        if path.name.startswith("neg_"):
            yield path, kd, 1  # train_group_size 1: FlagEmbedding reads no negatives


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_model(BUNDLED_MODEL, Path(".")))


def flagembedding_loads(path: Path, kd: bool, group: int, tokenizer, cache: Path) -> str | None:
    """None when FlagEmbedding loads and collates every row; else the exception it raised."""
    from FlagEmbedding.abc.finetune.embedder.AbsArguments import AbsEmbedderDataArguments
    from FlagEmbedding.abc.finetune.embedder.AbsDataset import (
        AbsEmbedderCollator,
        AbsEmbedderTrainDataset,
    )

    random.seed(0)
    args = AbsEmbedderDataArguments(
        train_data=[str(path)],
        knowledge_distillation=kd,
        train_group_size=group,
        cache_path=str(cache),
    )
    collate = AbsEmbedderCollator(tokenizer=tokenizer, query_max_len=16, passage_max_len=16)
    try:
        dataset = AbsEmbedderTrainDataset(args, tokenizer)
        for i in range(len(dataset)):
            for _ in range(SAMPLES_PER_ROW):
                collate([dataset[i]])
    except Exception as exc:  # noqa: BLE001 - any failure is what we compare against
        return f"{type(exc).__name__}: {exc}"
    return None


def test_checker_errors_are_exactly_what_flagembedding_fails_on(tokenizer, tmp_path):
    verdicts = []
    for path, kd, group in _cases():
        report = check_paths([path], knowledge_distillation=kd, train_group_size=group)
        failure = flagembedding_loads(path, kd, group, tokenizer, tmp_path / "cache")
        errors = sorted(c for c in report.counts if report.level_of(c) == "error")
        verdicts.append((path.relative_to(BAD).as_posix(), kd, group, errors, failure))
    wrong = [v for v in verdicts if bool(v[3]) != (v[4] is not None)]
    assert wrong == [], "\n".join(map(str, wrong))
    # the comparison has both sides: errors FlagEmbedding fails on, and files it loads
    assert sum(1 for v in verdicts if v[3]) >= 15 and sum(1 for v in verdicts if not v[3]) >= 10
    by_name = {(v[0], v[2]): v for v in verdicts}
    assert by_name["kd_mix", 2][3] == ["scores_dtype_mix"]
    assert "features can't be aligned" in by_name["kd_mix", 2][4]
    assert by_name["neg_empty.jsonl", 2][3] == ["neg_empty"]
    assert by_name["neg_empty.jsonl", 1][3] == [] and by_name["neg_empty.jsonl", 1][4] is None
