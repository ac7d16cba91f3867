"""The line-by-line checker: every way a training row can crash FlagEmbedding or quietly mislead it.

FlagEmbedding reads rows lazily, so a missing `neg` surfaces as `KeyError` hours into a run, an
empty one as `ZeroDivisionError`, a string one as a bare `AssertionError`. This module reads the
files exactly as FlagEmbedding picks them (:mod:`studio.facts.datafiles`), streams them line by line
(a 300 MB file is never held), and reports every problem with the file, the line, the field, what
is wrong and the fix. It counts every problem and keeps the first few of each kind as examples.

The same pass gathers the small per-row numbers that :mod:`studio.datawork.stats` needs
(positives and negatives per row, a key per query), so checking and statistics cost one read.

Speed matters here (the benchmark holds it to 0.6x of `pandas.read_json`): the hot loop parses
with `json.loads` and tests the common, valid row with a few type checks; only a row that fails
them goes through the slow, careful diagnosis that writes the messages.
"""

from __future__ import annotations

import json
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path

from studio.datawork.rows import BOM, is_json_array, load_array
from studio.facts import datafiles
from studio.facts.problems import ERROR, INFO, WARNING, Problem

HUGE_LINE_BYTES = 1_000_000
MINE_FIX = (
    "Mine hard negatives: `python -m studio data mine FILE --out NEW.jsonl` "
    'fills rows that lack them; or add "neg": ["a passage that does not answer the query"].'
)

# code: (level, field, message template, fix template). The templates are the product: each
# says what is wrong, what FlagEmbedding would do with it, and what to do instead.
MESSAGES: dict[str, tuple[str, str | None, str, str]] = {
    "bad_encoding": (
        ERROR,
        None,
        "the line is not valid UTF-8 ({detail}); FlagEmbedding stops loading the file here "
        "with UnicodeDecodeError.",
        "Save the file as UTF-8, e.g. `iconv -f GB18030 -t UTF-8 IN > OUT` "
        "(put the file's real encoding after -f).",
    ),
    "bom": (
        WARNING,
        None,
        "the file starts with a UTF-8 byte-order mark (BOM); FlagEmbedding accepts it, "
        "but many JSON tools reject the first line.",
        "Save the file as UTF-8 without a BOM.",
    ),
    "blank_line": (
        WARNING,
        None,
        "blank line; FlagEmbedding skips it.",
        "Delete blank lines, e.g. `sed -i '/^[[:space:]]*$/d' FILE`.",
    ),
    "huge_line": (
        WARNING,
        None,
        "the line is {size} long (over {limit}); its passages will be cut to "
        "`passage_max_len` tokens, and huge lines slow loading down.",
        "Split long documents into passages of a few hundred words before training.",
    ),
    "not_json": (
        ERROR,
        None,
        "not valid JSON: {detail}; FlagEmbedding stops loading the file here.",
        'Write one complete JSON object per line: {{"query": "...", "pos": ["..."], '
        '"neg": ["..."]}}.',
    ),
    "not_object": (
        ERROR,
        None,
        "the line is a JSON {kind}, not an object with `query`, `pos` and `neg`.",
        'Write one object per line: {{"query": "...", "pos": ["..."], "neg": ["..."]}}.',
    ),
    "query_missing": (
        ERROR,
        "query",
        "`query` is missing; FlagEmbedding reads None for it and fails when it reaches this "
        'row (with an instruction set, it trains on the text "None" instead).',
        'Add the query text: "query": "...", or drop the row.',
    ),
    "query_type": (
        ERROR,
        "query",
        "`query` is {kind}, not a string.",
        'Write the query as one JSON string: "query": "...".',
    ),
    "query_empty": (
        WARNING,
        "query",
        "`query` is an empty string; FlagEmbedding trains on it, and the model learns to match "
        "nothing to these passages.",
        "Fill in the query or drop the row.",
    ),
    "pos_missing": (
        ERROR,
        "pos",
        "`pos` is missing; every row needs a positive passage, and FlagEmbedding stops when "
        "it reaches this row (KeyError: 'pos' when no row has it, a bare AssertionError "
        "otherwise).",
        'Add "pos": ["a passage that answers the query"], or drop the row.',
    ),
    "pos_type": (
        ERROR,
        "pos",
        "`pos` is {kind}, not a list; FlagEmbedding stops with a bare AssertionError when it "
        "reaches this row.",
        'Wrap it in a list: "pos": ["..."].',
    ),
    "pos_empty": (
        ERROR,
        "pos",
        "`pos` is an empty list; FlagEmbedding picks a random positive and stops with "
        "IndexError when it reaches this row.",
        "Add at least one positive passage, or drop the row.",
    ),
    "pos_item_type": (
        ERROR,
        "pos",
        "`pos[{index}]` is {kind}, not a string; the tokenizer fails on it mid-training.",
        "Make every positive a text string.",
    ),
    "pos_item_empty": (
        WARNING,
        "pos",
        "`pos[{index}]` is an empty string; the model would be trained to match the query to "
        "an empty passage.",
        "Remove empty passages from `pos` (drop the row if none is left).",
    ),
    "neg_missing": (
        ERROR,
        "neg",
        "`neg` is missing; FlagEmbedding stops when it reaches this row (KeyError: 'neg' when "
        "no row has it, a bare AssertionError otherwise).",
        MINE_FIX,
    ),
    "neg_type": (
        ERROR,
        "neg",
        "`neg` is {kind}, not a list; FlagEmbedding stops with a bare AssertionError when it "
        "reaches this row.",
        'Wrap it in a list: "neg": ["..."].',
    ),
    "neg_empty": (
        ERROR,
        "neg",
        "`neg` is an empty list; FlagEmbedding divides by its length and stops with "
        "ZeroDivisionError when it reaches this row.",
        MINE_FIX,
    ),
    "neg_item_type": (
        ERROR,
        "neg",
        "`neg[{index}]` is {kind}, not a string; the tokenizer fails on it mid-training.",
        "Make every negative a text string.",
    ),
    "neg_unused": (
        WARNING,
        "neg",
        "`neg` {what}; with `train_group_size` 1 FlagEmbedding samples no negatives, so it is "
        "never read (with a larger group it would fail).",
        "Fix it before raising `train_group_size`: " + MINE_FIX,
    ),
    "neg_item_empty": (
        WARNING,
        "neg",
        "`neg[{index}]` is an empty string; it is a useless negative.",
        "Remove empty strings from `neg`.",
    ),
    "pos_in_neg": (
        WARNING,
        "neg",
        "a passage is both positive and negative for this query; the loss pulls it closer "
        "and pushes it away at once.",
        "Remove it from `neg` (mined negatives often contain unlabelled positives).",
    ),
    "scores_missing": (
        ERROR,
        "{name}",
        "`{name}` is missing but `knowledge_distillation` is on; FlagEmbedding stops with a "
        "bare AssertionError when it reaches this row.",
        "Add teacher scores, one number per passage, or turn `knowledge_distillation` off.",
    ),
    "scores_type": (
        ERROR,
        "{name}",
        "`{name}` is {kind}, not a list of numbers.",
        "Give a list with one teacher score per passage, in the same order.",
    ),
    "scores_length": (
        ERROR,
        "{name}",
        "`{name}` has {scores} score(s) but `{list}` has {passages} passage(s); FlagEmbedding "
        "reads the score at the sampled passage's index and stops with IndexError when it "
        "samples a passage past the last score.",
        "Give one score per passage of `{list}`, in the same order.",
    ),
    "scores_extra": (
        WARNING,
        "{name}",
        "`{name}` has {scores} score(s) but `{list}` has {passages} passage(s); FlagEmbedding "
        "never reads the extra scores, and the others may not belong to the passages they "
        "line up with.",
        "Give one score per passage of `{list}`, in the same order.",
    ),
    "scores_item_type": (
        ERROR,
        "{name}",
        "`{name}[{index}]` is {kind}, not a number; FlagEmbedding raises "
        "'pos_score or neg_score must be digit'.",
        "Write teacher scores as JSON numbers, e.g. 0.87.",
    ),
    "prompt_type": (
        WARNING,
        "prompt",
        "`prompt` is {kind}, not a string; where FlagEmbedding applies prompts it writes that "
        "value's text in front of the query.",
        'Write the instruction as a string: "prompt": "Represent this query for retrieval: ".',
    ),
    "prompt_null": (
        WARNING,
        "prompt",
        '`prompt` is null; wherever FlagEmbedding applies prompts it writes the text "None" '
        "in front of this query.",
        "Give the instruction as a string, or delete the key from every row of every file.",
    ),
    "type_type": (
        WARNING,
        "type",
        "`type` is {kind}, not a string; FlagEmbedding reads it only with "
        "`same_dataset_within_batch`, where every type must be one string per file.",
        'Write the data type as a string, e.g. "type": "normal".',
    ),
}

_NUMBER = (int, float)


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return {
        str: "a string",
        list: "a list",
        dict: "an object",
        bool: "a boolean",
        int: "a number",
        float: "a number",
    }.get(type(value), type(value).__name__)


def query_key(text: str) -> int:
    """A key for a query, equal for texts that differ only in case and spacing.

    Keys are Python string hashes: compare them only within one process (see
    :attr:`CheckReport.key_probe`).
    """
    return hash(" ".join(text.split()).casefold())


@dataclass
class FileSummary:
    """What the checker saw in one file."""

    file: str
    lines: int = 0
    rows: int = 0  # JSON objects: what FlagEmbedding will count as examples
    rows_with_errors: int = 0
    blank_lines: int = 0
    json_array: bool = False
    bom: bool = False
    prompt_strings: int = 0  # rows whose `prompt` is a string
    prompt_nulls: int = 0
    pos_scores: int = 0  # rows that carry the key
    neg_scores: int = 0
    types: dict[str, int] = field(default_factory=dict)  # `type` value -> rows
    # teacher-score column -> "int" when every score is a whole JSON number, "float" when any
    # has a decimal point; datasets types the column per file from that
    score_kinds: dict[str, str] = field(default_factory=dict)
    keys: dict[str, int] = field(default_factory=dict)  # top-level key -> rows
    # When only the first `lines` were checked (a sample): the whole file's lines, the bytes
    # checked and the file's size; else None.
    lines_total: int | None = None
    bytes_checked: int | None = None
    bytes_total: int | None = None

    @property
    def prompt_absent(self) -> int:
        return self.rows - self.prompt_strings - self.prompt_nulls


@dataclass
class CheckReport:
    """Every problem counted, the first few of each kind kept, plus per-row numbers for stats."""

    paths: list[str]
    files: list[FileSummary]
    counts: dict[str, int]  # problem code -> how many
    examples: dict[str, list[Problem]]  # problem code -> the first few
    path_problems: list[Problem]  # about paths and whole files rather than lines
    knowledge_distillation: bool = False
    seconds: float = 0.0
    # One entry per row (JSON object), in file order; rows that are not objects get none.
    n_pos: array = field(default_factory=lambda: array("I"))
    n_neg: array = field(default_factory=lambda: array("I"))
    query_keys: array = field(default_factory=lambda: array("q"))
    lines: array = field(default_factory=lambda: array("I"))
    row_ok: bytearray = field(default_factory=bytearray)  # 1 where the row has no error
    pos_in_neg_rows: int = 0
    key_probe: int = field(default_factory=lambda: hash("bge-studio"))

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    def level_of(self, code: str) -> str:
        for p in self.path_problems:
            if p.code == code:
                return p.level
        return MESSAGES[code][0] if code in MESSAGES else ERROR

    @property
    def error_count(self) -> int:
        return sum(n for code, n in self.counts.items() if self.level_of(code) == ERROR)

    @property
    def warning_count(self) -> int:
        return sum(n for code, n in self.counts.items() if self.level_of(code) == WARNING)

    @property
    def has_errors(self) -> bool:
        return self.error_count > 0

    @property
    def problems(self) -> list[Problem]:
        """Path problems, then the kept examples; errors before warnings."""
        found = list(self.path_problems) + [p for ps in self.examples.values() for p in ps]
        order = {ERROR: 0, WARNING: 1, INFO: 2}
        return sorted(found, key=lambda p: order[p.level])

    def table(self) -> list[dict]:
        """One row per kind of problem: level, code, count, and the first example."""
        order = {ERROR: 0, WARNING: 1, INFO: 2}
        out = []
        for code, count in sorted(
            self.counts.items(), key=lambda kv: (order[self.level_of(kv[0])], kv[0])
        ):
            first = (self.examples.get(code) or [None])[0]
            out.append(
                {
                    "level": self.level_of(code),
                    "code": code,
                    "count": count,
                    "first": str(first) if first else "",
                }
            )
        return out


class _Collector:
    """Counts problems and keeps the first few of each kind as full Problems."""

    def __init__(self, max_examples: int):
        self.max_examples = max_examples
        self.counts: dict[str, int] = {}
        self.examples: dict[str, list[Problem]] = {}
        self.per_file: dict[tuple[str, str], int] = {}  # (code, file) -> count

    def add(self, code: str, file: str, line: int | None, **values) -> None:
        n = self.counts.get(code, 0)
        self.counts[code] = n + 1
        self.per_file[code, file] = self.per_file.get((code, file), 0) + 1
        if n >= self.max_examples:
            return
        level, field_name, message, fix = MESSAGES[code]
        self.examples.setdefault(code, []).append(
            Problem(
                level,
                message.format(**values),
                fix.format(**values),
                field=field_name.format(**values) if field_name else None,
                file=file,
                line=line,
                code=code,
            )
        )

    def forget(self, code: str, file: str) -> None:
        """Drop every `code` problem of one file (when a file-level problem says it once)."""
        n = self.per_file.pop((code, file), 0)
        if not n:
            return
        self.counts[code] -= n
        if not self.counts[code]:
            del self.counts[code]
        kept = [p for p in self.examples.get(code, []) if p.file != file]
        if kept:
            self.examples[code] = kept
        else:
            self.examples.pop(code, None)


def _count_lines(fh) -> int:
    """Lines left in a binary file (the last one counts without its newline), at read speed."""
    count, last = 0, b"\n"
    for chunk in iter(lambda: fh.read(1 << 20), b""):
        count += chunk.count(b"\n")
        last = chunk[-1:]
    return count + (last != b"\n")


def _size(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1e6:.1f} MB"
    return f"{n / 1e3:.0f} kB" if n >= 10_000 else f"{n:,} bytes"


_UNUSED_NEG = {
    "neg_empty": "is an empty list",
    "neg_item_type": "holds an item that is not a string",
    "neg_item_empty": "holds an empty string",
}


def _diagnose(obj: dict, add, kd: bool, negs_used: bool = True) -> bool:
    """The careful look at a row the fast path rejected; returns True when it has an error.

    `add(code, **values)` records a problem at this row. `negs_used` is False with
    `train_group_size` 1, where FlagEmbedding never reads a row's `neg` items (it still
    asserts that `neg` is a list).
    """
    errors = [0]

    def err(code: str, **values) -> None:
        if not negs_used and code in _UNUSED_NEG:
            code, values = "neg_unused", {"what": _UNUSED_NEG[code]}
        if MESSAGES[code][0] == ERROR:
            errors[0] += 1
        add(code, **values)

    query = obj.get("query")
    if "query" not in obj:
        err("query_missing")
    elif not isinstance(query, str):
        err("query_type", kind=_kind(query))
    elif not query.strip():
        err("query_empty")

    for name in ("pos", "neg"):
        value = obj.get(name)
        if name not in obj:
            err(f"{name}_missing")
        elif not isinstance(value, list):
            err(f"{name}_type", kind=_kind(value))
        elif not value:
            err(f"{name}_empty")
        else:
            for i, item in enumerate(value):
                if not isinstance(item, str):
                    err(f"{name}_item_type", index=i, kind=_kind(item))
                    break
            for i, item in enumerate(value):
                if isinstance(item, str) and not item.strip():
                    err(f"{name}_item_empty", index=i)
                    break

    if kd:
        _check_scores(obj, err)
    _check_optional(obj, err)
    return errors[0] > 0


def _check_scores(obj: dict, err) -> bool:
    """Teacher scores (only when knowledge distillation is on); True when all is well."""
    ok = True
    for name, of in (("pos_scores", "pos"), ("neg_scores", "neg")):
        scores = obj.get(name)
        if name not in obj or scores is None:
            err("scores_missing", name=name)
            ok = False
        elif not isinstance(scores, list):
            err("scores_type", name=name, kind=_kind(scores))
            ok = False
        else:
            bad = next(
                (
                    (i, s)
                    for i, s in enumerate(scores)
                    if not isinstance(s, _NUMBER) or isinstance(s, bool)
                ),
                None,
            )
            if bad is not None:
                err("scores_item_type", name=name, index=bad[0], kind=_kind(bad[1]))
                ok = False
            passages = obj.get(of)
            if isinstance(passages, list) and len(scores) != len(passages):
                err(
                    "scores_length" if len(scores) < len(passages) else "scores_extra",
                    name=name,
                    list=of,
                    scores=len(scores),
                    passages=len(passages),
                )
                ok = False
    return ok


def _check_optional(obj: dict, err) -> None:
    if "prompt" in obj:
        prompt = obj["prompt"]
        if prompt is None:
            err("prompt_null")
        elif not isinstance(prompt, str):
            err("prompt_type", kind=_kind(prompt))
    if "type" in obj and not isinstance(obj["type"], str):
        err("type_type", kind=_kind(obj["type"]))


def _json_detail(exc: json.JSONDecodeError) -> str:
    msg = exc.msg
    if msg == "Extra data":
        msg = "extra text after the object ends (two objects on one line?)"
    elif msg.startswith("Expecting value") and exc.pos == 0:
        msg = "it does not start a JSON value"
    return f"{msg} at column {exc.colno}"


def path_problems(found: datafiles.DataFiles, code_prefix: str = "path") -> list[Problem]:
    """What is wrong with the `train_data` paths themselves: missing, not .json/.jsonl, a folder
    nested too deep to be read, a folder with nothing to read.

    The one implementation for the data checker (codes ``path_*``) and the pre-flight check
    (``code_prefix="data"``: ``data_missing``..., the codes its faces and tests know).
    """
    out: list[Problem] = []

    def add(level: str, what: str, path, message: str, fix: str) -> None:
        code = f"{code_prefix}_{what}"
        out.append(Problem(level, message, fix, field="train_data", file=str(path), code=code))

    for p in found.missing:
        fix = (
            "Fix the path (relative paths are read from the config's `studio.base_dir` when it "
            "records one, else from the folder the studio runs in)."
        )
        add(ERROR, "missing", p, f"`{p}` does not exist.", fix)
    for p in found.skipped:
        if p.is_file():
            add(
                WARNING,
                "skipped",
                p,
                f"`{p.name}` is skipped: FlagEmbedding reads only .json and .jsonl files.",
                "Rename it to .jsonl if it holds training rows.",
            )
        elif p.is_dir() and any(c.name.endswith(datafiles.DATA_SUFFIXES) for c in p.iterdir()):
            add(
                WARNING,
                "nested",
                p,
                f"folder `{p.name}` inside a data folder is skipped: FlagEmbedding reads "
                "folders one level deep.",
                "Move its files up one level, or list the folder itself in `train_data`.",
            )
    for d in found.empty_dirs:
        add(
            ERROR,
            "empty_dir",
            d,
            f"folder `{d}` holds no .json or .jsonl file at its top level "
            "(FlagEmbedding reads folders one level deep).",
            "Point `train_data` at the data files, or move them up one level.",
        )
    return out


class _Checker:
    def __init__(
        self,
        kd: bool,
        max_examples: int,
        max_line_bytes: int,
        negs_used: bool = True,
        max_bytes: int | None = None,
    ):
        self.kd = kd
        self.max_bytes = max_bytes or None  # 0 or None: every line
        self.negs_used = negs_used
        self.max_line_bytes = max_line_bytes
        self.collector = _Collector(max_examples)
        self.n_pos = array("I")
        self.n_neg = array("I")
        self.query_keys = array("q")
        self.lines = array("I")
        self.row_ok = bytearray()
        self.pos_in_neg_rows = 0

    def check_file(self, path: Path) -> FileSummary:
        summary = FileSummary(str(path))
        if is_json_array(path):
            self._check_array(path, summary)
        else:
            self._check_lines(path, summary)
        return summary

    def _check_array(self, path: Path, summary: FileSummary) -> None:
        name = str(path)
        summary.json_array = True
        try:
            items = load_array(path)
        except UnicodeDecodeError as exc:
            self.collector.add("bad_encoding", name, None, detail=str(exc.reason))
            return
        except json.JSONDecodeError as exc:
            self.collector.add("not_json", name, exc.lineno, detail=_json_detail(exc))
            return
        summary.lines = len(items)
        for i, item in enumerate(items, 1):
            self._check_object(item, name, i, summary)

    def _check_lines(self, path: Path, summary: FileSummary) -> None:
        name = str(path)
        add = self.collector.add
        decode = json.JSONDecoder().decode  # json.loads minus its per-call encoding sniffing
        check_object = self._check_object
        limit = self.max_line_bytes
        stop = self.max_bytes
        offset = 0
        lineno = 0
        with open(path, "rb") as fh:
            for lineno, raw in enumerate(fh, 1):  # noqa: B007 - lineno is read after the loop
                if stop is not None:
                    if offset >= stop:
                        # A stated sample: count the rest at read speed, check none of it.
                        summary.lines_total = lineno + _count_lines(fh)
                        summary.bytes_checked, summary.bytes_total = offset, path.stat().st_size
                        lineno -= 1
                        break
                    offset += len(raw)
                if lineno == 1 and raw.startswith(BOM):
                    summary.bom = True
                    add("bom", name, 1)
                    raw = raw[3:]
                if len(raw) > limit:
                    add("huge_line", name, lineno, size=_size(len(raw)), limit=_size(limit))
                try:
                    obj = decode(raw.decode("utf-8"))
                except UnicodeDecodeError as exc:
                    add("bad_encoding", name, lineno, detail=_decode_detail(raw, exc))
                    continue
                except ValueError as exc:
                    if not raw.strip():
                        summary.blank_lines += 1
                        add("blank_line", name, lineno)
                    elif isinstance(exc, json.JSONDecodeError):
                        add("not_json", name, lineno, detail=_json_detail(exc))
                    else:
                        add("not_json", name, lineno, detail=str(exc))
                    continue
                check_object(obj, name, lineno, summary)
        summary.lines = lineno

    def _check_object(self, obj, name: str, lineno: int, summary: FileSummary) -> None:
        if type(obj) is not dict:
            self.collector.add("not_object", name, lineno, kind=_kind(obj).split(" ")[-1])
            return
        summary.rows += 1
        self.lines.append(lineno)
        keys = summary.keys
        for k in obj:
            keys[k] = keys.get(k, 0) + 1
        query = obj.get("query")
        pos = obj.get("pos")
        neg = obj.get("neg")
        ok = (
            type(query) is str
            and type(pos) is list
            and type(neg) is list
            and pos
            and neg
            and query.strip()
            and all(type(p) is str and p.strip() for p in pos)
            and all(type(n) is str and n.strip() for n in neg)
        )
        if self.kd:
            _score_kinds(obj, summary.score_kinds)
        if ok and self.kd:
            ok = _scores_ok(obj, pos, neg)
        if ok and ("prompt" in obj or "type" in obj):
            ok = type(obj.get("prompt", "")) is str and type(obj.get("type", "")) is str
        has_error = False
        if not ok:
            has_error = _diagnose(
                obj,
                lambda code, **values: self.collector.add(code, name, lineno, **values),
                self.kd,
                self.negs_used,
            )
        _count_optional(obj, summary)
        if has_error:
            summary.rows_with_errors += 1
        self.row_ok.append(0 if has_error else 1)
        self.n_pos.append(len(pos) if type(pos) is list else 0)
        self.n_neg.append(len(neg) if type(neg) is list else 0)
        self.query_keys.append(query_key(query) if type(query) is str else 0)
        if "pos_scores" in obj:
            summary.pos_scores += 1
        if "neg_scores" in obj:
            summary.neg_scores += 1
        if type(pos) is list and type(neg) is list and pos and neg:
            if len(pos) == 1:
                overlap = pos[0] in neg
            else:
                try:
                    overlap = not set(pos).isdisjoint(neg)
                except TypeError:  # unhashable items, already reported
                    overlap = False
            if overlap:
                self.pos_in_neg_rows += 1
                self.collector.add("pos_in_neg", name, lineno)


_ABSENT = object()


def _scores_ok(obj: dict, pos: list, neg: list) -> bool:
    ps, ns = obj.get("pos_scores"), obj.get("neg_scores")
    return (
        type(ps) is list
        and type(ns) is list
        and len(ps) == len(pos)
        and len(ns) == len(neg)
        and all(type(s) is float or type(s) is int for s in ps)
        and all(type(s) is float or type(s) is int for s in ns)
    )


def _score_kinds(obj: dict, kinds: dict[str, str]) -> None:
    for name in ("pos_scores", "neg_scores"):
        scores = obj.get(name)
        if type(scores) is not list or kinds.get(name) == "float":
            continue
        if any(type(x) is float for x in scores):
            kinds[name] = "float"
        elif any(type(x) is int for x in scores):
            kinds[name] = "int"


def _count_optional(obj: dict, summary: FileSummary) -> None:
    prompt = obj.get("prompt", _ABSENT)
    if type(prompt) is str:
        summary.prompt_strings += 1
    elif "prompt" in obj and prompt is None:
        summary.prompt_nulls += 1
    kind = obj.get("type")
    if type(kind) is str:
        summary.types[kind] = summary.types.get(kind, 0) + 1


def _decode_detail(raw: bytes, exc: UnicodeDecodeError) -> str:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as inner:
        bad = raw[inner.start : inner.start + 1]
        return f"byte 0x{bad.hex()} at column {inner.start + 1}"
    return str(exc.reason)


def _file_problems(files: list[FileSummary], kd: bool) -> list[Problem]:
    """Problems that only show across rows or files: partial prompts, mixed types, empty files."""
    out: list[Problem] = []
    for f in files:
        if f.lines_total is not None:
            out.append(
                Problem(
                    WARNING,
                    f"checked the first {f.lines:,} of {f.lines_total:,} lines "
                    f"({_size(f.bytes_checked or 0)} of {_size(f.bytes_total or 0)}); the other "
                    f"{f.lines_total - f.lines:,} are not checked, and FlagEmbedding stops at "
                    "the first bad one when it reaches it.",
                    f"Check the whole file with `python -m studio data check {f.file}`, or "
                    "raise the limit (`studio.preflight_max_mb` for pre-flight, `--max-mb` "
                    "for data check; 0 checks every line).",
                    field="train_data",
                    file=f.file,
                    code="sampled",
                )
            )
        if f.rows == 0 and f.lines - f.blank_lines == 0:
            out.append(
                Problem(
                    ERROR,
                    "the file holds no rows; datasets cannot load an empty JSON file, so "
                    "FlagEmbedding stops with StopIteration while loading the data.",
                    "Fill it or remove it from `train_data`.",
                    field="train_data",
                    file=f.file,
                    code="empty_file",
                )
            )
        if f.json_array:
            out.append(
                Problem(
                    INFO,
                    "the file is one JSON array: line numbers below are item numbers, and the "
                    "whole file had to be loaded at once.",
                    "Convert it to JSON Lines (one object per line) for large data.",
                    file=f.file,
                    code="json_array",
                )
            )
        if len(f.types) > 1:
            shown = ", ".join(f"{k} ({v})" for k, v in sorted(f.types.items()))
            out.append(
                Problem(
                    WARNING,
                    f"the file mixes `type` values: {shown}. With `same_dataset_within_batch` "
                    "FlagEmbedding asserts one type per batch and stops ('Data type is not "
                    "consistent in the same batch').",
                    "Put each type in its own file.",
                    field="type",
                    file=f.file,
                    code="type_mixed",
                )
            )
        if kd and f.rows and (f.pos_scores == 0 or f.neg_scores == 0):
            out.append(
                Problem(
                    ERROR,
                    "`knowledge_distillation` is on but no row of this file has "
                    "`pos_scores` and `neg_scores`; FlagEmbedding stops with ValueError "
                    "while loading it.",
                    "Add teacher scores to every row or turn `knowledge_distillation` off.",
                    field="knowledge_distillation",
                    file=f.file,
                    code="scores_absent",
                )
            )
    if kd:
        out += _score_kind_problems(files)
    with_prompt = sum(f.prompt_strings for f in files)
    if with_prompt:
        for f in files:
            lacking = f.rows - f.prompt_strings
            if lacking:
                out.append(
                    Problem(
                        WARNING,
                        f"{lacking} of {f.rows} rows have no string `prompt` while "
                        f"{with_prompt} row(s) in the data do; FlagEmbedding gives them "
                        'prompt None and writes the text "None" in front of those queries '
                        "wherever it applies prompts.",
                        "Give every row a `prompt`, or remove `prompt` from every row of every "
                        "file.",
                        field="prompt",
                        file=f.file,
                        code="prompt_partial",
                    )
                )
    return out


def _beir_file_problem(f: FileSummary) -> Problem | None:
    """A BEIR corpus.jsonl or queries.jsonl (rows with `_id`/`id` and `text`, no `query`) given
    as training data: one error saying what it is and how to convert it, else None."""
    keys = f.keys
    if not f.rows or "query" in keys or "text" not in keys or not ("_id" in keys or "id" in keys):
        return None
    path = Path(f.file)
    what = "queries file" if "quer" in path.name and "title" not in keys else "corpus"
    return Problem(
        ERROR,
        f"this is a BEIR {what} (rows with `_id` and `text`), not training rows: FlagEmbedding "
        "reads `query`, `pos` and `neg`, so every row would fail.",
        f"Turn the BEIR folder (corpus.jsonl, queries.jsonl, qrels/) into training rows: "
        f"`python -m studio data convert {path.parent} --out train.jsonl`, or hold out an "
        f"evaluation set from it: `python -m studio data split {path.parent} --out DIR "
        "--n-queries N`.",
        file=f.file,
        code="beir_file",
    )


def _score_kind_problems(files: list[FileSummary]) -> list[Problem]:
    """Whole-number teacher scores in one file and decimals in another: datasets types the
    column int64 in one and double in the other, and `concatenate_datasets` (FlagEmbedding
    joins the files with it) stops with "features can't be aligned"."""
    out = []
    for name in ("pos_scores", "neg_scores"):
        whole = [f.file for f in files if f.score_kinds.get(name) == "int"]
        decimal = [f.file for f in files if f.score_kinds.get(name) == "float"]
        if not whole or not decimal:
            continue
        for file in whole:
            out.append(
                Problem(
                    ERROR,
                    f"every `{name}` value in this file is a whole number, while "
                    f"{Path(decimal[0]).name}{' and others' if len(decimal) > 1 else ''} "
                    "holds decimals; datasets types the two columns differently and "
                    "FlagEmbedding stops joining the files with \"The features can't be "
                    'aligned".',
                    "Write the scores of this file with a decimal point (1.0, not 1): "
                    "regenerate them as floats, e.g. `json.dumps([float(x) for x in scores])`.",
                    field=name,
                    file=file,
                    code="scores_dtype_mix",
                )
            )
    return out


def check_paths(
    paths: list[str | Path],
    *,
    knowledge_distillation: bool = False,
    max_examples_per_kind: int = 5,
    max_line_bytes: int = HUGE_LINE_BYTES,
    train_group_size: int | None = None,
    max_bytes: int | None = None,
) -> CheckReport:
    """Check every row of the files FlagEmbedding would read for these paths, in one pass.

    Teacher scores are checked only when `knowledge_distillation` is on (FlagEmbedding drops
    them otherwise). With `train_group_size` 1 FlagEmbedding reads no negatives, so a bad
    `neg` item is a warning (None: FlagEmbedding's default, 8). With `max_bytes` (0 or None:
    no limit) each JSON Lines file is checked up to the first line past that many bytes, and
    the report says so (code ``sampled``, with the file's whole line count). Nothing is printed
    or raised for bad data: it is all in the report.
    """
    started = time.perf_counter()
    found = datafiles.expand(list(paths))
    negs_used = train_group_size is None or train_group_size > 1
    checker = _Checker(
        knowledge_distillation, max_examples_per_kind, max_line_bytes, negs_used, max_bytes
    )
    files = [checker.check_file(path) for path in found.files]
    found_problems = path_problems(found) + _file_problems(files, knowledge_distillation)
    collector = checker.collector
    for f in files:
        beir_problem = _beir_file_problem(f)
        if beir_problem is not None:  # one problem with the fix, not one per row
            for code, file in list(collector.per_file):
                if file == f.file:
                    collector.forget(code, file)
            found_problems.append(beir_problem)
    for p in found_problems:
        if p.code == "scores_absent":  # one file-level error says it; drop the per-row echo
            collector.forget("scores_missing", p.file)
    counts = dict(collector.counts)
    for p in found_problems:
        counts[p.code] = counts.get(p.code, 0) + 1
    return CheckReport(
        paths=[str(p) for p in paths],
        files=files,
        counts=counts,
        examples=collector.examples,
        path_problems=found_problems,
        knowledge_distillation=knowledge_distillation,
        seconds=time.perf_counter() - started,
        n_pos=checker.n_pos,
        n_neg=checker.n_neg,
        query_keys=checker.query_keys,
        lines=checker.lines,
        row_ok=checker.row_ok,
        pos_in_neg_rows=checker.pos_in_neg_rows,
    )
