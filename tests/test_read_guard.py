"""The read guard (tests/read_guard.py) fails a test run that reads beside the repository."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import ROOT

INNER = """
from pathlib import Path

def test_reads(tmp_path):
    (tmp_path / "mine.txt").write_text("fine")  # a temp folder: allowed
    assert (tmp_path / "mine.txt").read_text() == "fine"
    assert Path({inside!r}).read_text()  # the repository: allowed
    try:
        open({outside!r}).close()  # beside the repository: recorded, even if it is missing
    except OSError:
        pass
"""


def _run_inner(tmp_path, outside: str, extra_env: dict | None = None):
    test = tmp_path / "inner" / "test_inner.py"
    test.parent.mkdir()
    test.write_text(INNER.format(inside=str(ROOT / "README.md"), outside=outside))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)])}
    env.update(extra_env or {})
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "read_guard",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(test.parent),
            str(test),
        ],
        cwd=test.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_read_beside_the_repository_fails_the_run(tmp_path):
    outside = str(ROOT.parent / "beside-the-repository" / "train.jsonl")  # need not exist
    result = _run_inner(tmp_path, outside)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 passed" in result.stdout  # the test itself passed; the guard failed the run
    assert f"READ OUTSIDE REPO: {outside}  (by test_inner.py::test_reads)" in result.stdout


def test_named_folders_are_guarded_and_clean_runs_pass(tmp_path):
    forbidden = tmp_path / "data-elsewhere"
    forbidden.mkdir()
    (forbidden / "x.jsonl").write_text("{}")
    result = _run_inner(
        tmp_path, str(forbidden / "x.jsonl"), {"BGE_STUDIO_TEST_FORBIDDEN": str(forbidden)}
    )
    assert result.returncode == 1 and str(forbidden / "x.jsonl") in result.stdout
    clean = tmp_path / "clean"
    clean.mkdir()
    result = _run_inner(clean, str(clean / "inner" / "nothing.txt"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "READ OUTSIDE REPO" not in result.stdout
