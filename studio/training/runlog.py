"""Reading a run's files incrementally: new metrics lines, the log's tail, the failure line.

The UI polls these about once a second on runs that may log 50,000 steps, so nothing here
re-reads a whole file: readers keep a byte offset and only parse what was appended, and the
tail and failure readers look at the end of the log only.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from studio.facts.secrets import redact, secret_values

_TAIL_BYTES = 64 * 1024
_RANK_PREFIX = re.compile(r"^\[(?:rank|default)\d+\]:\s?")
_EXCEPTION = re.compile(
    r"^(?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception|Interrupt|Exit)\b(?::.*)?$"
)
_WRAPPERS = ("ChildFailedError", "torch.distributed.elastic")


class MetricsReader:
    """Tails `metrics.jsonl`: each call to :meth:`read_new` returns only lines appended since.

    A line still being written (no newline yet) is left for the next call, so a reader racing
    the trainer never sees half a record.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.offset = 0

    def read_new(self) -> list[dict]:
        try:
            with self.path.open("rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read()
        except FileNotFoundError:
            return []
        end = chunk.rfind(b"\n")
        if end < 0:
            return []
        self.offset += end + 1
        records = []
        for line in chunk[: end + 1].splitlines():
            if line.strip():
                try:
                    records.append(json.loads(line))
                except ValueError:
                    continue
        return records


def read_metrics(path: str | Path) -> list[dict]:
    return MetricsReader(path).read_new()


def step_records(records: list[dict]) -> list[dict]:
    """Only per-step lines (those with a loss), not train_begin/summary/train_end events."""
    return [r for r in records if "event" not in r and r.get("loss") is not None]


def tail_bytes(path: Path, size: int = _TAIL_BYTES) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, 2)
            length = fh.tell()
            fh.seek(max(0, length - size))
            return fh.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def tail_lines(path: str | Path, n: int = 40) -> str:
    text = tail_bytes(Path(path))
    # tqdm redraws with carriage returns: keep the last state of each line only.
    lines = [line.rsplit("\r", 1)[-1] for line in text.splitlines()]
    # Shown in the UI and notebooks: mask this process's secrets should a library print one.
    return redact("\n".join(lines[-n:]), secret_values())


def last_metrics(path: str | Path) -> dict | None:
    """The last per-step record, reading only the file's end."""
    text = tail_bytes(Path(path), 16 * 1024)
    for line in reversed(text.splitlines()):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if "event" not in record and record.get("loss") is not None:
            return record
    return None


def exception_line(log_path: str | Path) -> str | None:
    """The line that names why a run failed (the worker's exception, not torchrun's wrapper)."""
    return exception_line_in(tail_bytes(Path(log_path), 256 * 1024))


def exception_line_in(text: str) -> str | None:
    """The last exception line in a piece of log (see :func:`exception_line`)."""
    candidates = []
    for raw in text.splitlines():
        line = _RANK_PREFIX.sub("", raw.rsplit("\r", 1)[-1]).strip()
        if _EXCEPTION.match(line) and not any(w in line for w in _WRAPPERS):
            candidates.append(line)
    return candidates[-1] if candidates else None
