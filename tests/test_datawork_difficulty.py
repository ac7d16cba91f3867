"""The difficulty report: negatives too easy (the loss goes to ~0) or copies of the positive.

Real scores from the bundled MiniLM on three files: negatives that are copies of the positives,
negatives that are random unrelated text, and FlagEmbedding's own example data (hard, good
negatives), which must not be flagged either way.
"""

from __future__ import annotations

import json
import math

import pytest
from conftest import ROOT

from studio.cli.commands import main as cli
from studio.datawork import difficulty as dm

TRAIN = ROOT / "example_data" / "train.jsonl"


def rows(n=40):
    return [json.loads(line) for line in TRAIN.read_text().splitlines()[:n]]


def write(path, items):
    path.write_text("".join(json.dumps(r) + "\n" for r in items))
    return path


@pytest.fixture(scope="module")
def encoder():
    from studio.datawork.encoder import Encoder

    return Encoder("bundled:all-MiniLM-L6-v2", pooling="mean", max_length=64)


def test_row_loss_is_infonce_against_the_rows_negatives():
    assert dm.row_loss(0.8, [0.8], 0.02) == pytest.approx(math.log(2))
    assert dm.row_loss(0.9, [0.1, 0.1], 0.02) < 1e-15  # far easier than any flag threshold
    assert dm.row_loss(0.1, [0.9], 0.02) == pytest.approx(40, rel=1e-6)  # no overflow


def test_copies_of_the_positive_are_flagged_as_false_negatives(tmp_path, encoder):
    data = [{**r, "neg": [r["pos"][0]] * 3} for r in rows(20)]
    report = dm.difficulty([write(tmp_path / "copies.jsonl", data)], encoder)
    codes = [p.code for p in report.problems]
    assert codes == ["negatives_false"], report.problems
    assert report.duplicate_negatives == 60 and "60 of 60" in str(report.problems[0])


def test_random_unrelated_negatives_are_flagged_too_easy(tmp_path, encoder):
    filler = [
        "The recipe calls for two cups of flour and a pinch of salt.",
        "Migratory birds cross the strait every autumn at dawn.",
        "The orchestra tuned to the oboe before the overture began.",
    ]
    data = [{**r, "neg": filler} for r in rows(20)]
    report = dm.difficulty([write(tmp_path / "random.jsonl", data)], encoder)
    assert [p.code for p in report.problems] == ["negatives_too_easy"], report.summary()
    assert report.easy_rows >= 10


def test_hard_good_negatives_raise_no_flag(encoder):
    report = dm.difficulty([TRAIN], encoder, sample_size=40)
    assert report.problems == [], report.summary()
    assert report.close_negatives > 0  # hard indeed: many score near their positive


def test_cli_prints_the_report_and_writes_the_chart(tmp_path, capsys):
    data = [{**r, "neg": [r["pos"][0]]} for r in rows(6)]
    path = write(tmp_path / "copies.jsonl", data)
    html = tmp_path / "d.html"
    args = ["data", "difficulty", str(path), "--model", "bundled:all-MiniLM-L6-v2"]
    assert cli([*args, "--max-length", "64", "--html", str(html)]) == 0
    out = capsys.readouterr().out
    assert "near-copies of the pos   6 (100%)" in out and "likely false negatives" in out
    assert "positives" in html.read_text() and "negatives" in html.read_text()


def test_the_web_page_and_the_notebook_show_the_same_report(tmp_path):
    from test_actions import QUICKSTART, page_call, same_words

    from studio.core import config as config_mod
    from studio.notebook import Studio
    from studio.webui.app import AppContext, build_app

    data = [{**r, "neg": [r["pos"][0]] * 2} for r in rows(5)]
    path = write(tmp_path / "copies.jsonl", data)
    demo = build_app(AppContext(tmp_path / "runs", ROOT, initial=config_mod.load(QUICKSTART)))
    web = page_call(demo, "do_difficulty", data__paths=str(path))["data.difficulty_text"]
    studio = Studio(QUICKSTART, runs_dir=tmp_path / "runs", base_dir=ROOT)
    try:
        studio.data_tab.paths.value = str(path)
        studio.data_tab.difficulty_button.click()
        text = same_words(web, studio.data_tab.difficulty.value)
    finally:
        studio.close()
    assert "near-copies of the pos" in text and "likely false negatives" in text
