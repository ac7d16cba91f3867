"""Reading training rows from files the way FlagEmbedding does, without holding a file whole.

FlagEmbedding hands each file to `datasets.load_dataset("json")`, which reads JSON Lines and,
failing that, one JSON document (an array of rows). Blank lines are skipped and a UTF-8 BOM is
accepted. Everything in the workbench that needs rows (preview, token lengths, split, mining)
reads them through here, so a 300 MB file is streamed and a uniform sample costs one cheap pass
to count lines and one pass that parses only the chosen lines.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from studio.facts import datafiles

BOM = datafiles.BOM
is_json_array = datafiles.is_json_array
load_array = datafiles.load_array
CHUNK = 1 << 20


@dataclass(frozen=True)
class Row:
    """One parsed row and where it came from (line is the item number in a JSON array)."""

    file: str
    line: int
    data: dict


def data_files(paths: list[str | Path]) -> list[Path]:
    """The files FlagEmbedding reads for these paths (see :func:`studio.facts.datafiles.expand`)."""
    return datafiles.expand(list(paths)).files


def count_lines(path: str | Path) -> int:
    """Lines in a file (a last line without a newline counts), counted in 1 MB chunks."""
    count, last = 0, b"\n"
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n")


def iter_rows(path: str | Path) -> Iterator[Row]:
    """Every row of a file that is a JSON object; lines that are not are skipped silently.

    Use :func:`studio.datawork.check.check_paths` to hear about the skipped ones.
    """
    name = str(path)
    if is_json_array(path):
        for i, item in enumerate(load_array(path), 1):
            if isinstance(item, dict):
                yield Row(name, i, item)
        return
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                obj = json.loads(raw)
            except ValueError:  # JSONDecodeError and UnicodeDecodeError; blank lines too
                continue
            if isinstance(obj, dict):
                yield Row(name, lineno, obj)


def iter_paths(paths: list[str | Path]) -> Iterator[Row]:
    for path in data_files(paths):
        yield from iter_rows(path)


def head(paths: list[str | Path], n: int) -> list[Row]:
    """The first n rows across the files, reading no further than needed."""
    out: list[Row] = []
    for row in iter_paths(paths):
        if len(out) >= n:
            break
        out.append(row)
    return out


@dataclass
class Sample:
    rows: list[Row]
    total_lines: int  # lines (or array items) in all files: the population sampled from
    exact: bool  # True when every row was read (the file was small enough)


def sample(paths: list[str | Path], size: int, seed: int = 0) -> Sample:
    """A uniform random sample of about `size` rows across the files, never loading a file whole.

    Lines are chosen uniformly from all lines; blank or broken chosen lines are dropped, so the
    sample can be a little smaller than `size`. When there are at most `size` lines, all rows
    are returned and the sample is exact.
    """
    files = data_files(paths)
    counts = [len(load_array(f)) if is_json_array(f) else count_lines(f) for f in files]
    total = sum(counts)
    if total <= size:
        return Sample([r for f in files for r in iter_rows(f)], total, True)
    chosen = sorted(random.Random(seed).sample(range(total), size))
    rows: list[Row] = []
    offset, k = 0, 0
    for path, count in zip(files, counts, strict=True):
        wanted = set()
        while k < len(chosen) and chosen[k] < offset + count:
            wanted.add(chosen[k] - offset + 1)  # 1-based line numbers in this file
            k += 1
        offset += count
        if not wanted:
            continue
        if is_json_array(path):
            rows += [
                Row(str(path), i, item)
                for i, item in enumerate(load_array(path), 1)
                if i in wanted and isinstance(item, dict)
            ]
            continue
        last = max(wanted)
        with open(path, "rb") as fh:
            for lineno, raw in enumerate(fh, 1):
                if lineno in wanted:
                    try:
                        obj = json.loads(raw)
                    except ValueError:
                        continue
                    if isinstance(obj, dict):
                        rows.append(Row(str(path), lineno, obj))
                if lineno >= last:
                    break
    return Sample(rows, total, False)
