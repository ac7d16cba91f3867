"""Why an attempt failed, in words a user understands, read from this attempt's log only.

A resume appends to `train.log`, so the previous attempt's exception stays in it; each attempt
records the log's size when it starts (`log_offset` in status.json) and only what follows counts.
A worker killed by a signal leaves no exception line, but torchrun's summary names the signal;
a launcher killed by a signal shows as a negative exit code to the supervisor.
"""

from __future__ import annotations

import re
import signal
from pathlib import Path

from studio.facts.statusfile import disk_full_reason
from studio.training.runlog import exception_line_in

_TAIL_BYTES = 256 * 1024
_TORCHRUN_SIGNAL = re.compile(r"Signal (\d+) \((SIG\w+)\) received by PID (\d+)")
_TORCHRUN_EXIT = re.compile(r"exitcode\s*:\s*(-?\d+)")
TAIL_LINES = 15
# How a write that found no room shows in a log: Python's OSError, safetensors' Rust IoError,
# torch.save's stream writer. The errno picks the words (28 disk full, 27 size limit, 122 quota).
_NO_ROOM = re.compile(
    r"\[Errno (28|27|122)\][^\n]*?(?:: '([^'\n]+)')?$"
    r"|(No space left on device|StorageFull|File too large|FileTooLarge|Disk quota exceeded)",
    re.MULTILINE,
)
_SAVING = re.compile(r"Saving model checkpoint to (\S+)")
_WORDS_ERRNO = {"File too large": 27, "FileTooLarge": 27, "Disk quota exceeded": 122}


def no_room_in(log_text: str) -> tuple[int, str | None] | None:
    """(errno, path or None) of the last "no room to write" error in a log, else None.

    The path is the one the error names, else the checkpoint the trainer was saving."""
    found = list(_NO_ROOM.finditer(log_text))
    if not found:
        return None
    last = found[-1]
    code = int(last.group(1)) if last.group(1) else _WORDS_ERRNO.get(last.group(3) or "", 28)
    return code, last.group(2) or last_saving(log_text[: last.start()])


def last_saving(log_text: str) -> str | None:
    """The checkpoint the trainer said it was saving last, if any."""
    saving = _SAVING.findall(log_text)
    return saving[-1] if saving else None


def attempt_log(log_path: Path, offset: int | None) -> str:
    """The text this attempt appended to the log (its last 256 KiB)."""
    try:
        with open(log_path, "rb") as fh:
            fh.seek(0, 2)
            end = fh.tell()
            start = max(int(offset or 0), end - _TAIL_BYTES)
            if start > end:  # the log was replaced: read it whole
                start = max(0, end - _TAIL_BYTES)
            fh.seek(start)
            return fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def last_lines(text: str, n: int = TAIL_LINES) -> str:
    lines = [line.rsplit("\r", 1)[-1] for line in text.splitlines()]
    return "\n".join(line for line in lines[-n:])


def signal_words(sig: int) -> str:
    """'signal 9 (SIGKILL, often the out-of-memory killer)'."""
    try:
        name = signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"
    if sig == signal.SIGKILL:
        return f"signal {sig} ({name}, often the out-of-memory killer)"
    return f"signal {sig} ({name})"


def failure_reason(log_text: str, exit_code: int | None) -> str:
    """The one line that says why this attempt failed."""
    if exit_code is not None and exit_code < 0:
        return f"launcher killed by {signal_words(-exit_code)}"
    found = _TORCHRUN_SIGNAL.search(log_text)
    if found:
        return f"worker killed by {signal_words(int(found.group(1)))}"
    exc = exception_line_in(log_text)
    no_room = no_room_in(log_text)
    if no_room:
        reason = disk_full_reason(no_room[1], no_room[0])
        return f"{reason} ({exc})" if exc else reason
    if exc:
        return exc
    codes = [int(c) for c in _TORCHRUN_EXIT.findall(log_text)]
    if codes and codes[-1] < 0:
        return f"worker killed by {signal_words(-codes[-1])}"
    if exit_code:
        return f"the launcher exited with code {exit_code} without an error line (see the log)"
    return "the run ended without an error line (see the log)"


def vanished_reason(log_text: str, supervisor_pid: int | None) -> str:
    """Why a run whose processes are all gone never recorded an end."""
    exc = exception_line_in(log_text)
    no_room = no_room_in(log_text)
    if no_room:  # its supervisor could not write the end: not a kill
        reason = disk_full_reason(no_room[1], no_room[0])
        return f"{reason}; the run's end could not be recorded then ({exc or 'see the log'})"
    who = f"supervisor (pid {supervisor_pid})" if supervisor_pid else "supervisor"
    base = (
        f"the run's {who} was killed or the machine restarted: its processes are gone "
        "and no end was recorded"
    )
    return f"{base}; last error in the log: {exc}" if exc else base
