"""The exact text the model sees, and the instruction-format traps that spoil it silently.

FlagEmbedding builds the query text as `query_instruction_format.format(instruction, query)`,
instruction first. A row's `prompt` takes the instruction's place, but only when a global
`query_instruction_for_retrieval` is set — unless `same_dataset_within_batch` is on, where the
format is applied always. And `datasets` gives every row a `prompt` column as soon as one row of
any file has one, filling the others with None: those queries then read "None...". Passages get
`passage_instruction_format` when `passage_instruction_for_retrieval` is set; with
`same_dataset_within_batch`, rows of type `symmetric_sts`/`symmetric_clustering` get the query's
instruction instead. This module reproduces those rules (tested against FlagEmbedding's own
dataset classes) so users see the strings before they train on them.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from pathlib import Path

from studio.core.config import StudioConfig
from studio.datawork import rows as rows_mod
from studio.datawork.check import CheckReport
from studio.facts.problems import ERROR, INFO, WARNING, Problem

SYMMETRIC_TYPES = ("symmetric_sts", "symmetric_clustering")
_PROMPT_KEY = re.compile(rb'(?<!\\)"prompt"\s*:')
_PROMPT_STRING = re.compile(rb'(?<!\\)"prompt"\s*:\s*"')


@dataclass(frozen=True)
class Rules:
    """The settings that decide the text, as FlagEmbedding will hold them."""

    instruction: str | None = None
    query_format: str = "{}{}"
    passage_instruction: str | None = None
    passage_format: str = "{}{}"
    same_dataset: bool = False
    prompt_column: bool = False  # some row of some file has a `prompt` key
    train_group_size: int = 8

    @classmethod
    def from_config(cls, config: StudioConfig, prompt_column: bool = False) -> Rules:
        def fmt(name: str) -> str:
            # FlagEmbedding's data arguments turn a typed backslash-n into a newline
            return (config.get(name) or "{}{}").replace("\\n", "\n")

        return cls(
            instruction=config.get("query_instruction_for_retrieval"),
            query_format=fmt("query_instruction_format"),
            passage_instruction=config.get("passage_instruction_for_retrieval"),
            passage_format=fmt("passage_instruction_format"),
            same_dataset=bool(config.get("same_dataset_within_batch")),
            prompt_column=prompt_column,
            train_group_size=int(config.get("train_group_size") or 1),
        )

    def query_rule(self, row: dict) -> str:
        """Which rule makes this row's query text (for the preview's explanation)."""
        if not self.same_dataset and self.instruction is None:
            return "no instruction: the query as is"
        if self.prompt_column:
            return (
                "the row's `prompt`"
                if isinstance(row.get("prompt"), str)
                else ('no `prompt` in this row: "None" is used')
            )
        if self.instruction is None:
            return 'same_dataset_within_batch without instruction: "None" is used'
        return "`query_instruction_for_retrieval`"

    def query_text(self, row: dict) -> str:
        """The query exactly as FlagEmbedding's dataset produces it."""
        query = row["query"]
        if self.same_dataset or self.instruction is not None:
            prefix = row.get("prompt") if self.prompt_column else self.instruction
            return self.query_format.format(prefix, query)
        return query

    def passage_text(self, row: dict, passage: str) -> str:
        """A passage (positive or negative) exactly as FlagEmbedding's dataset produces it."""
        if self.same_dataset and row.get("type") in SYMMETRIC_TYPES:
            prefix = row.get("prompt") if self.prompt_column else self.instruction
            return self.query_format.format(prefix, passage)
        if self.passage_instruction is not None:
            return self.passage_format.format(self.passage_instruction, passage)
        return passage


@dataclass
class PreviewRow:
    file: str
    line: int
    query_raw: str
    query: str  # what the model sees
    positives: list[str]  # every positive as the model sees it (FlagEmbedding picks one a step)
    negatives: list[str]  # every negative as the model sees it (it samples group_size - 1)
    rule: str  # which instruction rule made the query text
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "file": self.file,
            "line": self.line,
            "query_raw": self.query_raw,
            "query": self.query,
            "positive": self.positives[0] if self.positives else "",
            "negatives": len(self.negatives),
            "rule": self.rule,
            "notes": "; ".join(self.notes),
        }


@dataclass
class PromptCensus:
    """How many rows carry a string `prompt`, across all files (the column is shared)."""

    rows: int
    with_prompt_key: int
    with_string_prompt: int

    @property
    def column(self) -> bool:
        return self.with_prompt_key > 0

    @property
    def lacking(self) -> int:
        return self.rows - self.with_string_prompt if self.column else 0


def prompt_census(paths: list[str | Path], report: CheckReport | None = None) -> PromptCensus:
    """Prompt counts, from a check report or from a fast byte scan that parses nothing."""
    if report is not None:
        return PromptCensus(
            report.rows,
            sum(f.keys.get("prompt", 0) for f in report.files),
            sum(f.prompt_strings for f in report.files),
        )
    total = keyed = strings = 0
    for path in rows_mod.data_files(paths):
        if rows_mod.is_json_array(path):
            items = [i for i in rows_mod.load_array(path) if isinstance(i, dict)]
            total += len(items)
            keyed += sum("prompt" in i for i in items)
            strings += sum(isinstance(i.get("prompt"), str) for i in items)
            continue
        with open(path, "rb") as fh:
            for raw in fh:
                if raw.strip():
                    total += 1
                    if b'"prompt"' in raw and _PROMPT_KEY.search(raw):
                        keyed += 1
                        strings += bool(_PROMPT_STRING.search(raw))
    return PromptCensus(total, keyed, strings)


def _fields(fmt: str) -> tuple[list[str], str | None]:
    """Replacement fields of a format string, or a parse error."""
    try:
        return [name for _, name, _, _ in string.Formatter().parse(fmt) if name is not None], None
    except ValueError as exc:
        return [], str(exc)


def _format_problems(fmt: str, flag: str, what: str) -> list[Problem]:
    names, parse_error = _fields(fmt)
    where = {"field": flag, "code": "format_fields"}
    if parse_error:
        return [
            Problem(
                ERROR,
                f"`{flag}` {fmt!r} is not a valid format string ({parse_error}); FlagEmbedding "
                "stops on the first row.",
                "Use `{}{}`: the instruction, then the text.",
                **where,
            )
        ]
    if any(n not in ("", "0", "1") for n in names):
        return [
            Problem(
                ERROR,
                f"`{flag}` {fmt!r} uses named fields; FlagEmbedding passes two unnamed values "
                "and stops with KeyError.",
                "Use `{}` placeholders: `{}{}` or e.g. `{}\\n{}`.",
                **where,
            )
        ]
    if len(names) != 2:
        effect = {
            0: f"every {what} becomes the same fixed text",
            1: f"the {what} itself is dropped: only the instruction is encoded",
        }.get(len(names), "FlagEmbedding stops with IndexError (it passes only two values)")
        return [
            Problem(
                ERROR,
                f"`{flag}` {fmt!r} has {len(names)} `{{}}` where exactly two belong "
                f"(instruction, then {what}): {effect}.",
                "Use `{}{}`: the instruction, then the text.",
                **where,
            )
        ]
    try:
        sample = fmt.format("\x00I", "\x00T")
    except (IndexError, ValueError) as exc:
        return [
            Problem(
                ERROR,
                f"`{flag}` {fmt!r} cannot be filled: {exc}.",
                "Use `{}{}`: the instruction, then the text.",
                **where,
            )
        ]
    if sample.find("\x00T") < sample.find("\x00I"):
        return [
            Problem(
                INFO,
                f"`{flag}` {fmt!r} puts the {what} before the instruction.",
                "Fine if intended; FlagEmbedding passes the instruction first.",
                field=flag,
                code="format_order",
            )
        ]
    return []


def _instruction_problems(value: str | None, flag: str, fmt: str) -> list[Problem]:
    if value is None:
        return []
    out = []
    if value.strip().lower() in ("none", "null"):
        out.append(
            Problem(
                WARNING,
                f"`{flag}` is the text {value!r}: every text gets {value!r} glued in front "
                "(a shell script's `None` arrives as a string, not as no value).",
                f"Remove `{flag}` to use no instruction.",
                field=flag,
                code="instruction_none_text",
            )
        )
    if "\\n" in value:
        out.append(
            Problem(
                WARNING,
                f"`{flag}` holds a typed backslash-n; FlagEmbedding turns `\\n` into a newline "
                "only in the format, so the model sees the two characters.",
                f"Put the newline in the format instead, e.g. `{{}}\\n{{}}`, or use a real "
                f"newline in `{flag}`.",
                field=flag,
                code="instruction_backslash_n",
            )
        )
    if value and fmt == "{}{}" and not value[-1].isspace() and value[-1] not in ":：。.?？!>-|":
        out.append(
            Problem(
                WARNING,
                f"`{flag}` ends in {value[-1]!r} and the format is `{{}}{{}}`: the "
                f"instruction runs straight into the text ({value[-12:]!r} + 'text...').",
                "End the instruction with a space or colon, or use the format `{} {}`.",
                field=flag,
                code="instruction_glued",
            )
        )
    return out


def format_warnings(
    config: StudioConfig,
    report: CheckReport | None = None,
    census: PromptCensus | None = None,
) -> list[Problem]:
    """Problems with the instruction settings, for this config and (when given) its data.

    The data-dependent traps (the "None" prefix) need to know which rows carry `prompt`: from
    `census`, from `report`, or by a fast scan of the config's `train_data`.
    """
    rules = Rules.from_config(config)
    out: list[Problem] = []
    applies_query = rules.same_dataset or rules.instruction is not None
    sides = (
        ("query", applies_query, rules.query_format, "the instruction"),
        (
            "passage",
            rules.passage_instruction is not None,
            rules.passage_format,
            "the passage instruction",
        ),
    )
    for side, applies, fmt, what in sides:
        name = f"{side}_instruction_format"
        if applies:
            out += _format_problems(fmt, name, side)
        elif config.args.get(name) not in (None, "{}{}"):
            out.append(
                Problem(
                    INFO,
                    f"`{name}` is set but unused: no `{side}_instruction_for_retrieval` is set.",
                    f"Set {what} too, or remove the format.",
                    field=name,
                    code="format_unused",
                )
            )
    if census is None:
        paths = config.args.get("train_data") or []
        census = prompt_census(paths, report) if (paths or report) else PromptCensus(0, 0, 0)
    overridden = census.column and not census.lacking  # every row's prompt replaces it
    if not overridden:
        out += _instruction_problems(
            rules.instruction, "query_instruction_for_retrieval", rules.query_format
        )
    out += _instruction_problems(
        rules.passage_instruction, "passage_instruction_for_retrieval", rules.passage_format
    )

    if rules.same_dataset and rules.instruction is None and not census.column and census.rows:
        out.append(
            Problem(
                ERROR,
                "`same_dataset_within_batch` is on, with no `query_instruction_for_retrieval` "
                'and no `prompt` in the data: FlagEmbedding writes the text "None" in front of '
                'every query ("None" + query).',
                "Set `query_instruction_for_retrieval` (an empty string is allowed), or give "
                "every row a `prompt`.",
                field="query_instruction_for_retrieval",
                code="none_prefix",
            )
        )
    elif applies_query and census.lacking:
        out.append(
            Problem(
                ERROR,
                f"{census.lacking:,} of {census.rows:,} rows have no string `prompt` while "
                f'others do: FlagEmbedding writes the text "None" in front of those queries '
                "instead of the instruction.",
                "Give every row a `prompt` (e.g. the global instruction), or remove `prompt` "
                "from every row of every file.",
                field="prompt",
                code="none_prefix",
            )
        )
    if not rules.same_dataset and rules.instruction is None and census.with_string_prompt:
        out.append(
            Problem(
                WARNING,
                f"{census.with_string_prompt:,} rows carry a `prompt`, but FlagEmbedding uses "
                "row prompts only when `query_instruction_for_retrieval` is set: they are "
                "ignored.",
                "Set `query_instruction_for_retrieval` (any text; the rows' prompts replace "
                "it) to train with the prompts.",
                field="query_instruction_for_retrieval",
                code="prompts_ignored",
            )
        )
    elif (
        not rules.same_dataset
        and rules.instruction is not None
        and census.column
        and not census.lacking
    ):
        out.append(
            Problem(
                INFO,
                "every row has a `prompt`, so `query_instruction_for_retrieval` itself is "
                "never used: each row's prompt replaces it.",
                "Nothing to do if that is what you want.",
                field="query_instruction_for_retrieval",
                code="instruction_overridden",
            )
        )
    return out


def preview(
    config: StudioConfig,
    n: int = 5,
    *,
    paths: list[str | Path] | None = None,
    report: CheckReport | None = None,
    seed: int | None = None,
    tokenizer=None,
) -> list[PreviewRow]:
    """The first `n` rows (or a seeded uniform sample of n) as the model will see them.

    Reads no more of a file than it needs (plus a fast prompt scan when no report is given).
    Rerankers and the ICL embedder are shown through :mod:`studio.datawork.module_preview`
    (their input needs the tokenizer: `tokenizer`, else the config model's).
    """
    paths = list(paths if paths is not None else config.args.get("train_data") or [])
    census = prompt_census(paths, report)
    rules = Rules.from_config(config, prompt_column=census.column)
    picked = rows_mod.head(paths, n) if seed is None else rows_mod.sample(paths, n, seed).rows
    from studio.datawork import module_preview

    if module_preview.applies(config):
        tokenizer = tokenizer or module_preview.load_tokenizer(config)
        return module_preview.preview_rows(config, picked, census.column, tokenizer, PreviewRow)
    out = []
    for row in picked:
        out.append(_preview_row(row, rules, config))
    return out


def _preview_row(row: rows_mod.Row, rules: Rules, config: StudioConfig) -> PreviewRow:
    data = row.data
    notes: list[str] = []
    query = data.get("query")
    pos = data.get("pos") if isinstance(data.get("pos"), list) else []
    neg = data.get("neg") if isinstance(data.get("neg"), list) else []
    try:
        seen_query = rules.query_text(data) if isinstance(query, str) else ""
        positives = [rules.passage_text(data, p) for p in pos if isinstance(p, str)]
        negatives = [rules.passage_text(data, p) for p in neg if isinstance(p, str)]
    except (IndexError, KeyError, ValueError) as exc:
        seen_query, positives, negatives = "", [], []
        notes.append(f"FlagEmbedding would stop on this row: {type(exc).__name__}: {exc}")
    if not isinstance(query, str):
        notes.append("`query` is not a string: run `data check`")
    if seen_query.startswith("None") and not (isinstance(query, str) and query.startswith("None")):
        notes.append('the query starts with "None": see the instruction warnings')
    needed = rules.train_group_size - 1
    if 0 < len(neg) < needed:
        notes.append(f"{len(neg)} negative(s) < {needed}: FlagEmbedding repeats them")
    if config.get("shuffle_ratio"):
        notes.append("`shuffle_ratio` is on: long positives are sometimes shuffled in thirds")
    return PreviewRow(
        file=row.file,
        line=row.line,
        query_raw=query if isinstance(query, str) else repr(query),
        query=seen_query,
        positives=positives,
        negatives=negatives,
        rule=rules.query_rule(data),
        notes=notes,
    )
