"""Small JSON files written atomically, so a reader never sees half a status.

A full disk (ENOSPC), a quota (EDQUOT) or a file-size limit (EFBIG, `ulimit -f`) must not cost
the status a user reads: a failed write leaves the previous file intact and no temp file
behind, and the error is turned into words that say which path and what to do
(:func:`disk_full_reason`). A run's end must reach the disk even when status.json cannot be
replaced (a replace needs a new file, so free space): each attempt reserves `.ending.json` at
its start, filled with blanks, and the supervisor overwrites it in place, which needs no new
space (:func:`write_ending`); a refresh then reads the end from there.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from pathlib import Path
from typing import Any

DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
ENDING_BYTES = 16 * 1024


def write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
        tmp.replace(path)
    except BaseException:  # the old file stays as it was; no half-written temp file is left
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def update_json(path: Path, **changes: Any) -> dict[str, Any]:
    data = read_json(path)
    data.update(changes)
    write_json(path, data)
    return data


def disk_full(exc: BaseException) -> bool:
    """Whether an error means "no room to write": disk full, quota, or file-size limit."""
    return isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS


def disk_full_reason(path: str | os.PathLike[str] | None, code: int = errno.ENOSPC) -> str:
    """The reason a user reads for a write that found no room, naming the path and the fix."""
    where = f" writing {path}" if path else ""
    if code == errno.EFBIG:
        return (
            f"disk full for this process (file too large{where}: the file-size limit, "
            "`ulimit -f`, was reached): raise the limit or write less (fewer checkpoints), "
            "then resume"
        )
    if code == errno.EDQUOT:
        return f"disk quota exceeded{where}: free space in your quota, then resume"
    return (
        f"disk full{where}: free space on that disk (e.g. delete old checkpoints, or set "
        "save_total_limit), then resume"
    )


def reserve_ending(path: Path, attempt: int) -> None:
    """Reserve the space of this attempt's end record now, while there is some."""
    head = json.dumps({"attempt": attempt}).encode()
    path.write_bytes(head + b" " * (ENDING_BYTES - len(head)))


def write_ending(path: Path, data: dict[str, Any]) -> None:
    """Overwrite the reserved end record in place (no new space needed); long text is cut."""
    body = dict(data)
    text = json.dumps(body, ensure_ascii=False).encode()
    if len(text) > ENDING_BYTES:
        body["log_tail"] = None
        text = json.dumps(body, ensure_ascii=False).encode()[:ENDING_BYTES]
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, text + b" " * (ENDING_BYTES - len(text)), 0)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_ending(path: Path, attempt: int | None) -> dict[str, Any]:
    """The end record of `attempt`, or {} (none written, another attempt's, unreadable)."""
    data = read_json(path)
    if data.get("attempt") != attempt or "state" not in data:
        return {}
    return data
