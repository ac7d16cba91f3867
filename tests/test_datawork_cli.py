"""`python -m studio data ...` through `studio.cli.data.register`, on a parser of our own."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FE_DATA, MSMARCO, ROOT

from studio.cli.data import register

BAD = Path(__file__).parent / "data" / "bad"


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="studio")
    register(parser.add_subparsers(dest="cmd", required=True))
    args = parser.parse_args(argv)
    code = args.func(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_check_exits_1_on_errors_and_names_file_line_and_fix(capsys):
    code, out, _ = run(["data", "check", str(BAD)], capsys)
    assert code == 1
    assert f"error: {BAD}/neg_empty.jsonl:2 neg: `neg` is an empty list" in out
    assert "Fix: Mine hard negatives" in out
    assert "neg_missing" in out and "count" in out  # the table of kinds
    last = out.rstrip().splitlines()[-1]
    assert last.startswith("46 rows in 25 file(s) checked in")
    assert last.endswith(": 15 error(s), 14 warning(s)")


def test_check_passes_clean_data(capsys):
    code, out, _ = run(["data", "check", str(MSMARCO), "--kd"], capsys)
    assert code == 0
    assert out.strip().endswith("0 error(s), 0 warning(s)")


def test_check_max_mb_checks_a_stated_sample(tmp_path, capsys):
    path = tmp_path / "a.jsonl"
    path.write_text(MSMARCO.read_text().splitlines()[0] + "\n" + "garbage\n")
    assert run(["data", "check", str(path)], capsys)[0] == 1
    code, out, _ = run(["data", "check", str(path), "--max-mb", "0.000001"], capsys)
    assert code == 0 and "checked the first 1 of 2 lines" in out and "--max-mb" in out


def test_check_json(capsys):
    code, out, _ = run(["data", "check", str(BAD / "kd"), "--kd", "--json"], capsys)
    report = json.loads(out)
    assert code == 1 and report["rows"] == 12
    assert report["counts"]["scores_absent"] == 1


def test_check_with_a_config_adds_the_instruction_traps(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    rows = [json.loads(line) for line in MSMARCO.open()][:3]
    plain = "".join(json.dumps({k: v for k, v in r.items() if k != "prompt"}) + "\n" for r in rows)
    (tmp_path / "data" / "train.jsonl").write_text(plain)
    config = tmp_path / "c.yaml"
    config.write_text("train_data: [data/train.jsonl]\nsame_dataset_within_batch: true\n")
    code, out, _ = run(
        ["data", "check", "--config", str(config), "--base-dir", str(tmp_path)], capsys
    )
    assert code == 1
    assert 'writes the text "None" in front of every query' in out
    assert "1 error(s), 0 warning(s)" in out


def test_stats(capsys, tmp_path):
    code, out, _ = run(["data", "stats", str(FE_DATA / "retrieval")], capsys)
    assert code == 0
    assert "steps_per_epoch" in out and "negatives per row" in out
    code, out, _ = run(["data", "stats", str(MSMARCO), "--json"], capsys)
    assert json.loads(out)["rows"] == 10


def test_preview(capsys, config_file):
    code, out, _ = run(
        ["data", "preview", str(MSMARCO), "-n", "1", "--config", str(config_file)], capsys
    )
    assert code == 0
    assert "query:    'Given a web search query" in out  # the row's prompt replaces "Q: "


@pytest.fixture(scope="module")
def config_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("config") / "c.yaml"
    path.write_text(
        "model_name_or_path: bundled:all-MiniLM-L6-v2\nquery_instruction_for_retrieval: 'Q: '\n"
    )
    return path


def test_lengths_writes_the_chart(tmp_path, capsys, config_file):
    html = tmp_path / "lengths.html"
    argv = ["data", "lengths", str(MSMARCO), "--config", str(config_file), "--html", str(html)]
    code, out, _ = run(argv, capsys)
    assert code == 0 and "exact: all 10 rows" in out and "truncated_share" in out
    assert "plotly" in html.read_text()[:5000].lower()


def test_split_and_refusal(tmp_path, capsys):
    code, out, _ = run(
        [
            "data",
            "split",
            str(FE_DATA / "retrieval" / "nq.jsonl"),
            "--out",
            str(tmp_path / "s"),
            "--n-queries",
            "2",
        ],
        capsys,
    )
    assert code == 0 and "eval_queries   2" in out
    assert (tmp_path / "s" / "eval" / "qrels" / "test.tsv").is_file()
    code, _, err = run(
        ["data", "split", str(MSMARCO), "--out", str(tmp_path / "s"), "--n-queries", "2"], capsys
    )
    assert code == 2 and "already exists" in err


def test_mine(tmp_path, capsys):
    source = tmp_path / "in.jsonl"
    rows = [json.loads(line) for line in MSMARCO.open()][:4]
    source.write_text(
        "".join(json.dumps({"query": r["query"], "pos": r["pos"]}) + "\n" for r in rows)
    )
    pool = tmp_path / "pool.jsonl"
    pool.write_text("".join(json.dumps({"text": t}) + "\n" for t in rows[0]["neg"][:8]))
    argv = [
        "data",
        "mine",
        str(source),
        "--out",
        str(tmp_path / "out.jsonl"),
        "--model",
        "bundled:all-MiniLM-L6-v2",
        "--pooling",
        "mean",
        "--max-length",
        "32",
        "--range",
        "0-5",
        "--n",
        "2",
        "--pool",
        str(pool),
    ]
    code, out, err = run(argv, capsys)
    assert code == 0 and "rows_mined       4" in out and "encoding passages: 8/8" in err
    mined = [json.loads(line) for line in (tmp_path / "out.jsonl").open()]
    assert all(len(r["neg"]) == 2 for r in mined)
    code, _, err = run(argv[:3] + ["--out", str(source)] + argv[5:], capsys)
    assert code == 2 and "refusing to write over the input" in err
    code, _, err = run(argv[:-8] + ["--range", "9"], capsys)
    assert code == 2 and "--range wants FROM-TO" in err


def test_help_imports_nothing_heavy():
    script = (
        "import argparse, sys\n"
        "from studio.cli.data import register\n"
        "p = argparse.ArgumentParser(); register(p.add_subparsers())\n"
        "try:\n    p.parse_args(['data', 'check', '--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = {'torch', 'transformers', 'FlagEmbedding', 'faiss', 'pandas', 'plotly'}\n"
        "assert not heavy & set(sys.modules), heavy & set(sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "--kd" in done.stdout


@pytest.mark.parametrize("sub", ["check", "stats", "preview", "lengths", "split", "mine"])
def test_every_subcommand_has_help(sub, capsys):
    with pytest.raises(SystemExit) as exc:
        run(["data", sub, "--help"], capsys)
    assert exc.value.code == 0
