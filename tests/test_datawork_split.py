"""Held-out splits that cannot flatter, and BEIR data turned into training rows (issue 18).

A split's corpus decides how hard its evaluation is: the held-out queries' positives among
other queries' positives made a base model score nDCG@10 0.95 where the real corpus gave 0.53.
These tests build tiny data sets here (rows, and a BEIR folder with titles and graded qrels).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import pytest

from studio.cli.data import register
from studio.datawork import beir
from studio.datawork.check import check_paths
from studio.datawork.split import split


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def make_beir(root: Path, n: int = 10) -> Path:
    """n queries; query i judges doc a{i} 2, b{i} 1 and c{i} 0; 3n titled docs + 5 unjudged;
    one qrels row names an absent query."""
    corpus = [
        {"_id": f"{kind}{i}", "title": f"Title {kind}{i}", "text": f"passage {kind} number {i}"}
        for i in range(n)
        for kind in "abc"
    ] + [{"_id": f"x{i}", "title": "", "text": f"unjudged passage {i}"} for i in range(5)]
    write_jsonl(root / "corpus.jsonl", corpus)
    write_jsonl(root / "queries.jsonl", [{"_id": f"q{i}", "text": f"query {i}"} for i in range(n)])
    (root / "qrels").mkdir()
    lines = ["query-id\tcorpus-id\tscore"]
    for i in range(n):
        lines += [f"q{i}\ta{i}\t2", f"q{i}\tb{i}\t1", f"q{i}\tc{i}\t0"]
    lines.append("q_absent\ta0\t1")
    (root / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="studio")
    register(parser.add_subparsers(dest="cmd", required=True))
    args = parser.parse_args(argv)
    code = args.func(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def read_qrels(eval_dir: Path) -> list[list[str]]:
    with (eval_dir / "qrels" / "test.tsv").open() as fh:
        return list(csv.reader(fh, delimiter="\t"))[1:]


def test_split_corpus_is_the_whole_pool_and_says_so(tmp_path):
    rows = [
        {"query": f"query {i}", "pos": [f"pos {i}"], "neg": [f"neg {i}a", f"neg {i}b"]}
        for i in range(30)
    ]
    source = write_jsonl(tmp_path / "rows.jsonl", rows)
    result = split(source, tmp_path / "out", n_queries=5)
    # every passage of every row (30 positives, 60 negatives), not a sample
    assert result.corpus_size == 90
    corpus = [json.loads(x) for x in (result.eval_dir / "corpus.jsonl").open()]
    assert {d["text"] for d in corpus} == {p for r in rows for p in r["pos"] + r["neg"]}
    assert "every passage your rows name (90" in result.summary()["note"]
    assert "expect lower numbers there" in (result.eval_dir / "README.md").read_text()


def test_split_refuses_a_positives_only_pool_and_takes_the_collection(tmp_path, capsys):
    """Rows without negatives made an eval corpus of positives only (nDCG@10 0.95 vs 0.53)."""
    beir_dir = make_beir(tmp_path / "beir")
    rows = [{"query": f"query {i}", "pos": [f"Title a{i} passage a number {i}"]} for i in range(10)]
    source = write_jsonl(tmp_path / "rows.jsonl", rows)
    with pytest.raises(ValueError, match="positives only") as info:
        split(source, tmp_path / "out", n_queries=3)
    assert "--corpus" in str(info.value)
    code, _, err = run_cli(
        ["data", "split", str(source), "--out", str(tmp_path / "o"), "--n-queries", "3"], capsys
    )
    assert code == 2 and "positives only" in err and "Traceback" not in err

    result = split(source, tmp_path / "out2", n_queries=3, corpus=beir_dir / "corpus.jsonl")
    corpus = [json.loads(x) for x in (result.eval_dir / "corpus.jsonl").open()]
    assert result.corpus_size == len(corpus) == 35  # the whole collection, nothing added
    assert {d["_id"] for d in corpus} == {
        json.loads(x)["_id"] for x in (beir_dir / "corpus.jsonl").open()
    }
    assert corpus[0]["title"] == "Title a0"  # titles kept
    # the rows' positives are found in the collection by their "title text": its ids judged
    assert {r[1] for r in read_qrels(result.eval_dir)} <= {f"a{i}" for i in range(10)}
    assert "full collection" in result.note


def test_split_of_a_beir_folder_keeps_corpus_titles_and_grades(tmp_path, capsys):
    beir_dir = make_beir(tmp_path / "beir")
    out = tmp_path / "out"
    code, stdout, err = run_cli(
        ["data", "split", str(beir_dir), "--out", str(out), "--n-queries", "3"], capsys
    )
    assert code == 0, err
    eval_dir = out / "eval"
    assert (eval_dir / "corpus.jsonl").read_bytes() == (beir_dir / "corpus.jsonl").read_bytes()
    held = [json.loads(x)["_id"] for x in (eval_dir / "queries.jsonl").open()]
    assert len(held) == 3
    qrels = read_qrels(eval_dir)
    assert sorted(g for q, _, g in qrels) == ["0"] * 3 + ["1"] * 3 + ["2"] * 3  # grades kept
    assert {q for q, _, _ in qrels} == set(held)
    assert "whole corpus" in stdout and "35 passages" in stdout
    # the other 7 queries are training rows: "title text" positives, judged-0 negatives
    train = [json.loads(x) for x in (out / "train.jsonl").open()]
    assert len(train) == 7
    assert not {r["query"] for r in train} & {f"query {q[1:]}" for q in held}
    i = int(train[0]["query"].split()[-1])
    assert train[0]["pos"] == [
        f"Title a{i} passage a number {i}",
        f"Title b{i} passage b number {i}",
    ]
    assert train[0]["neg"] == [f"Title c{i} passage c number {i}"]
    assert not check_paths([out / "train.jsonl"]).has_errors
    # with --min-grade 2 only the highly relevant passage is a positive
    split(beir_dir, tmp_path / "g2", n_queries=3, min_grade=2)
    rows = [json.loads(x) for x in (tmp_path / "g2" / "train.jsonl").open()]
    assert all(len(r["pos"]) == 1 and r["pos"][0].startswith("Title a") for r in rows)
    assert beir.is_folder(beir_dir) and not beir.is_folder(out)


def test_beir_data_converts_to_training_rows_and_check_says_how(tmp_path, capsys):
    """`data split DIR` said "not a file", `data split queries.jsonl` "0 distinct usable
    queries", `data check corpus.jsonl` one error per row with no hint of a corpus."""
    beir_dir = make_beir(tmp_path / "beir")
    out = tmp_path / "train.jsonl"
    code, stdout, err = run_cli(
        ["data", "convert", str(beir_dir), "--out", str(out), "--min-grade", "2"], capsys
    )
    assert code == 0, err
    rows = [json.loads(x) for x in out.open()]
    assert len(rows) == 10 and rows[3] == {
        "query": "query 3",
        "pos": ["Title a3 passage a number 3"],  # grade 2 only: the threshold the user picked
        "neg": ["Title c3 passage c number 3"],  # judged 0
    }
    assert "judgments_without_query  1" in stdout
    assert not check_paths([out]).has_errors
    code, _, err = run_cli(["data", "convert", str(beir_dir), "--out", str(out)], capsys)
    assert code == 2 and "already exists" in err  # never overwritten
    code, _, _ = run_cli(["data", "convert", str(beir_dir), "--out", str(tmp_path / "g1")], capsys)
    assert code == 0
    rows = [json.loads(x) for x in (tmp_path / "g1").open()]
    assert len(rows[0]["pos"]) == 2  # default threshold 1: grades 1 and 2

    # `data check` on the corpus: one error that says what it is and how to convert it
    code, stdout, _ = run_cli(["data", "check", str(beir_dir / "corpus.jsonl")], capsys)
    assert code == 1
    assert stdout.rstrip().endswith(": 1 error(s), 0 warning(s)")
    assert "this is a BEIR corpus" in stdout and f"data convert {beir_dir}" in stdout
    report = check_paths([beir_dir / "queries.jsonl"])
    assert [p.code for p in report.problems] == ["beir_file"]
    assert "BEIR queries file" in report.problems[0].message
    # `data split` on the queries file points at the folder
    code, _, err = run_cli(
        ["data", "split", str(beir_dir / "queries.jsonl"), "--out", str(tmp_path / "s")]
        + ["--n-queries", "2"],
        capsys,
    )
    assert code == 2 and f"data convert {beir_dir}" in err


def test_convert_is_offered_on_the_data_tab_and_in_the_notebook(tmp_path):
    """The web Data tab and the notebook's data panel call the same action as the CLI."""
    from conftest import ROOT, web_event

    from studio.app import views
    from studio.notebook import Studio
    from studio.webui.app import AppContext, build_app

    beir_dir = make_beir(tmp_path / "beir")
    runs = tmp_path / "runs"
    runs.mkdir()
    demo = build_app(AppContext(runs, ROOT))
    event = web_event(demo, "do_convert")
    reg = demo.registry
    data = {c: c.value for c in event.inputs}
    data[reg["data.paths"]] = str(beir_dir)
    data[reg["convert.out"]] = str(tmp_path / "web.jsonl")
    data[reg["convert.min_grade"]] = 2
    web = views.plain(views.to_html(event.fn(data)))
    assert "rows : 10" in web and "min_grade : 2" in web
    assert len((tmp_path / "web.jsonl").read_text().splitlines()) == 10

    studio = Studio(runs_dir=runs, base_dir=ROOT)
    try:
        box = studio.convert_box
        assert box.widget in studio.data_tab.widget.children
        box.folder.value, box.out.value = str(beir_dir), str(tmp_path / "nb.jsonl")
        box.button.click()
        notebook = views.plain(box.output.value)
        assert "rows : 10" in notebook and "min_grade : 1" in notebook, box.message.value
        assert len((tmp_path / "nb.jsonl").read_text().splitlines()) == 10
    finally:
        studio.close()


def test_convert_mines_negatives_in_the_same_step(tmp_path, capsys):
    """Judgments without any graded-0 passage give rows with `neg: []`: with --model they are
    mined from the corpus at once, so the file passes `data check`."""
    beir_dir = make_beir(tmp_path / "beir")
    qrels = beir_dir / "qrels" / "test.tsv"
    qrels.write_text("".join(x for x in qrels.open() if not x.rstrip().endswith("\t0")))
    out = tmp_path / "train.jsonl"
    code, stdout, err = run_cli(
        ["data", "convert", str(beir_dir), "--out", str(out), "--model"]
        + ["bundled:all-MiniLM-L6-v2", "--pooling", "mean", "--n", "3"],
        capsys,
    )
    assert code == 0, err
    rows = [json.loads(x) for x in out.open()]
    assert len(rows) == 10 and all(len(r["neg"]) == 3 for r in rows)
    assert all(not set(r["neg"]) & set(r["pos"]) for r in rows)
    assert "rows_mined               10" in stdout and "mine hard" not in stdout.lower()
    assert not check_paths([out]).has_errors
    assert not list(tmp_path.glob("*.tmp"))
