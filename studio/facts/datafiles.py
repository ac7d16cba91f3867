"""Which files FlagEmbedding will read for `--train_data`, exactly as it decides.

FlagEmbedding takes each path: a file counts only if it ends in `.json`/`.jsonl` (anything
else is skipped silently); a folder is read one level deep with the same rule. Every face
that talks about "the training data" goes through here so they agree with the trainer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

DATA_SUFFIXES = (".json", ".jsonl")


@dataclass
class DataFiles:
    files: list[Path] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)  # exist, but FlagEmbedding ignores them
    empty_dirs: list[Path] = field(default_factory=list)


def expand(paths: list[str | Path]) -> DataFiles:
    out = DataFiles()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = False
            for child in sorted(path.iterdir()):
                if child.is_file() and child.name.endswith(DATA_SUFFIXES):
                    out.files.append(child)
                    found = True
                elif child.is_file() or child.is_dir():
                    out.skipped.append(child)
            if not found:
                out.empty_dirs.append(path)
        elif path.is_file():
            (out.files if path.name.endswith(DATA_SUFFIXES) else out.skipped).append(path)
        else:
            out.missing.append(str(raw))
    return out


def count_examples(path: Path) -> int:
    """Rows in a data file: non-blank lines of JSON Lines, items of a JSON array.

    Cached per (path, size, mtime): the UI re-runs pre-flight checks as the user types.
    """
    stat = path.stat()
    return _count_examples(str(path), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=256)
def _count_examples(name: str, size: int, mtime_ns: int) -> int:
    if is_json_array(name):
        return len(load_array(name))
    count = 0
    with open(name, "rb") as fh:
        for line in fh:
            if line.strip():
                count += 1
    return count


BOM = b"\xef\xbb\xbf"


def is_json_array(path: str | Path) -> bool:
    """True when the file is one JSON array (rows as items) rather than JSON Lines."""
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if head.startswith(BOM):
        head = head[3:]
    return head.lstrip()[:1] == b"["


def load_array(path: str | Path) -> list:
    """A JSON-array file, parsed whole (such files cannot be streamed without a parser library)."""
    import json

    raw = Path(path).read_bytes()
    return json.loads(raw[3:] if raw.startswith(BOM) else raw)
