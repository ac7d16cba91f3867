"""A pytest plugin that fails the run when a test reads a file beside the repository.

The tests must pass in a clone with nothing beside it, so everything they read lives in the
repository (tests/data/, example_data/) or a temp folder. A test that quietly reads a folder
beside the checkout passes on the machine where it was written and fails everywhere else; this
guard makes it fail here too. A Python audit hook (PEP 578) sees every `open`, `os.listdir`
and `os.scandir` of the test process; a path under the repository's parent folder (other than
the repository itself, the temp folder and dot-folders such as ~/.cache when the repository
sits in a home folder), or under a folder named in BGE_STUDIO_TEST_FORBIDDEN (os.pathsep
separated: folders a developer keeps data in outside the checkout), is recorded, and the session fails at the end listing each path and the test that read it.

Subprocesses (torchrun runs) are not audited: their inputs are the paths the tests give them.
Under pytest-xdist each worker writes what it saw to a folder the controller made, and the
controller fails the session on the union.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ("open", "os.listdir", "os.scandir")

_offenders: dict[str, str] = {}  # path -> test id
_current = ["(collection)"]


def _roots() -> tuple[list[str], list[str]]:
    forbidden = [str(ROOT.parent)]
    forbidden += [p for p in os.environ.get("BGE_STUDIO_TEST_FORBIDDEN", "").split(os.pathsep) if p]
    allowed = [str(ROOT)]
    temp = os.path.realpath(tempfile.gettempdir())
    if temp.startswith(str(ROOT.parent) + os.sep):
        allowed.append(temp)
    return [os.path.abspath(p) for p in forbidden], allowed


FORBIDDEN, ALLOWED = _roots()


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def offending(path: str) -> bool:
    """Whether reading `path` reaches outside the repository and the temp folder."""
    if any(_inside(path, root) for root in ALLOWED):
        return False
    for root in FORBIDDEN:
        if _inside(path, root):
            # ~/.cache etc. are not beside the repository, even when it sits in a home folder
            return not (root == str(ROOT.parent) and os.path.relpath(path, root).startswith("."))
    return False


def _hook(event: str, args: tuple) -> None:
    if event not in EVENTS or not args:
        return
    target = args[0]
    if isinstance(target, int) or target is None:
        return
    try:
        path = os.path.abspath(os.fsdecode(target))
    except (TypeError, ValueError):
        return
    if offending(path):
        _offenders.setdefault(path, _current[0])


REPORT_DIR_ENV = "BGE_STUDIO_READ_GUARD_DIR"  # the controller's folder for xdist workers' finds


def pytest_configure(config):
    FORBIDDEN[:], ALLOWED[:] = _roots()
    sys.addaudithook(_hook)
    if not hasattr(config, "workerinput"):  # the controller (or a run without xdist)
        os.environ[REPORT_DIR_ENV] = tempfile.mkdtemp(prefix="read-guard-")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _current[0] = item.nodeid
    try:
        return (yield)
    finally:
        _current[0] = "(between tests)"


def pytest_sessionfinish(session, exitstatus):
    report_dir = Path(os.environ.get(REPORT_DIR_ENV, ""))
    worker = getattr(session.config, "workerinput", {}).get("workerid")
    if worker:
        if _offenders and report_dir.is_dir():
            (report_dir / f"{worker}.json").write_text(json.dumps(_offenders))
        return
    if report_dir.is_dir():
        for found in sorted(report_dir.glob("*.json")):
            for path, test in json.loads(found.read_text()).items():
                _offenders.setdefault(path, test)
            found.unlink()
        report_dir.rmdir()
    if _offenders:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    if not _offenders:
        return
    terminalreporter.section("reads outside the repository", red=True)
    for path, test in sorted(_offenders.items()):
        terminalreporter.line(f"READ OUTSIDE REPO: {path}  (by {test})")
    terminalreporter.line(
        "Tests must read only the repository and temp folders: put the file under tests/data/."
    )
