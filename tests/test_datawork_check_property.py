"""The checker's fast path and its careful diagnosis agree on every row (issue 11).

`check_paths` accepts most rows with one quick predicate and only diagnoses the rest. If the
predicate ever let through a row that the diagnosis calls an error, that row's error would go
unreported. Thousands of random rows built from the values that trip FlagEmbedding up (wrong
types, empty strings and lists, None, bools as scores, mismatched score lengths) are checked
both ways: a row is counted as bad exactly when the diagnosis finds an error in it.
"""

from __future__ import annotations

import json
import random

import pytest

from studio.datawork.check import _diagnose, check_paths

TEXTS = ["a query", "", "   ", 7, None, ["list"], {"k": "v"}, True]
LISTS = [["p"], ["p", "q"], [], [""], ["  "], ["p", 3], [None], "p", None, 5, [["p"]]]
SCORES = [[1.0], [1], [0.5, 2], [], ["1"], [True], [None], 1.0, None, "0.3"]
OPTIONAL = ["an instruction", None, 3, "", ["x"]]


def random_row(rng: random.Random) -> dict:
    row: dict = {}
    for key, values in (("query", TEXTS), ("pos", LISTS), ("neg", LISTS)):
        if rng.random() < 0.9:
            row[key] = rng.choice(values)
    for key in ("pos_scores", "neg_scores"):
        if rng.random() < 0.5:
            row[key] = rng.choice(SCORES)
    for key in ("prompt", "type"):
        if rng.random() < 0.2:
            row[key] = rng.choice(OPTIONAL)
    return row


@pytest.mark.parametrize("kd", [False, True], ids=["plain", "knowledge-distillation"])
def test_fast_path_and_diagnosis_agree(tmp_path, kd):
    rng = random.Random(11 + kd)
    rows = [random_row(rng) for _ in range(3000)]
    rows += [{"query": "q", "pos": ["p"], "neg": ["n"], "pos_scores": [1.0], "neg_scores": [0]}]
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")

    report = check_paths([path], knowledge_distillation=kd)

    assert len(report.row_ok) == len(rows)
    disagreements = [
        (i + 1, row)
        for i, row in enumerate(rows)
        if bool(report.row_ok[i]) == _diagnose(row, lambda code, **values: None, kd)
    ]
    assert disagreements == [], (
        f"line, row where the fast path and diagnosis disagree: {disagreements[:5]}"
    )
    # The sample really covers both outcomes, so the assertion above is not vacuous.
    assert 0 < sum(report.row_ok) < len(rows)
