"""Read a launch script the way bash would: words, quotes, variables, `export`, `eval $cmd`.

FlagEmbedding's own example scripts (examples/finetune/*/*.sh) do not write the torchrun line
out: they assign `train_data="..."`, `model_args="--model_name_or_path ... --cache_dir
$HF_HUB_CACHE"`, `cmd="torchrun ... $model_args $data_args $training_args"` and run
`eval $cmd`. A reader that splits lines with `shlex` sees an unclosed quote and an empty
command; one that keeps `$DATA` as text writes a command that runs something else. This module
is a small shell reader for what such scripts use, and nothing more:

- words with '…', "…", backslash escapes and line continuations; `#` comments; `;`, `&&`,
  `||`, `|` and newlines end a command;
- `NAME=value` and `export NAME=value` (a plain assignment does not split its value);
  `$NAME`, `${NAME}`, `${NAME:-default}`/`${NAME-default}`/`${NAME:=default}`; unquoted
  expansions are split into words like the shell's IFS splitting; `~` and `~/…` at the start
  of a word (and after `=` in an assignment);
- `if [ -z "$X" ]; then … fi` / `-n` / `else`, so FlagEmbedding's "HF_HUB_CACHE default"
  block takes the right branch; other conditions are taken as true, with a warning;
- `eval WORDS` joins the expanded words with spaces and reads the result again (so the single
  quotes inside `data_args="... '{}{}' ..."` group words, as they do in bash); `$cmd` alone
  runs the split words without reading quotes again, as bash does.

Every character remembers the script line it was written on, so a flag that reaches the
command through two variables is still reported at the line where the author typed it.
A variable the script does not set is taken from `environ` (a warning naming the line: the
training machine may differ) or, if absent there too, kept as written (a warning).
`$(…)` and backquotes are not run: they are kept as written, with a warning.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from studio.facts.problems import ERROR, WARNING, Problem

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
DECLARE_WORDS = ("export", "declare", "local", "readonly", "typeset")
SEPARATORS = (";", "&", "|")


@dataclass
class Word:
    """A shell word after expansion, with the script line its first character came from."""

    text: str
    line: int
    lines: list[int] = field(default_factory=list, repr=False)  # one per character


@dataclass
class Command:
    """One simple command: its words, the lines it spans, and how it ended."""

    words: list[Word]
    first_line: int
    last_line: int


@dataclass
class ShellState:
    """Variables (value + line of each character) and which of them are exported."""

    environ: Mapping[str, str]
    file: str
    variables: dict[str, tuple[str, list[int]]] = field(default_factory=dict)
    exported: dict[str, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    kept: dict[str, int] = field(default_factory=dict)  # unresolved text -> line
    _warned: set = field(default_factory=set)

    def forget_unresolved(self, text: str, line: int) -> None:
        """An unset variable tested by `[ -z "$X" ]` is the expected case, not a problem."""
        self._warned.discard(("unresolved", text, line))
        self.problems[:] = [
            p for p in self.problems if not (p.code == "unresolved_variable" and p.line == line)
        ]

    def lookup(self, name: str, line: int, label: str = "") -> tuple[str, list[int]] | None:
        if name in self.variables:
            return self.variables[name]
        if name in self.environ:
            value = self.environ[name]
            said = (
                f"`~` on line {line} is this machine's home folder, {value!r}."
                if label == "~"
                else f"`${name}` on line {line} is not set by the script; this machine's "
                f"environment gives {value!r}."
            )
            self._warn(
                ("env", name, line),
                said,
                "Check that the training machine has the same value, or set it in the script.",
                line,
                "env_variable",
            )
            return value, [line] * len(value)
        return None

    def unresolved(self, text: str, line: int, why: str) -> None:
        self.kept[text] = line
        self._warn(
            ("unresolved", text, line),
            f"`{text}` on line {line} {why}; it is kept as written.",
            "Replace it with the value the script means, or set it in the script.",
            line,
            "unresolved_variable",
        )

    def unclosed(self, quote: str, line: int) -> None:
        self.problems.append(
            Problem(
                ERROR,
                f"the {quote} quote opened on line {line} is never closed: a shell reads the "
                "rest of the script as one word.",
                f"Close the quote that line {line} opens.",
                file=self.file,
                line=line,
                code="quote",
            )
        )

    def _warn(self, key, message: str, fix: str, line: int, code: str) -> None:
        if key in self._warned:
            return
        self._warned.add(key)
        self.problems.append(Problem(WARNING, message, fix, file=self.file, line=line, code=code))


class _Reader:
    """Reads located characters into commands of expanded words."""

    def __init__(self, chars: list[tuple[str, int]], state: ShellState):
        self.chars = chars
        self.state = state
        self.i = 0

    # -- character access ---------------------------------------------------------------
    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.chars[j][0] if j < len(self.chars) else ""

    def line(self) -> int:
        if self.i < len(self.chars):
            return self.chars[self.i][1]
        return self.chars[-1][1] if self.chars else 1

    # -- commands -----------------------------------------------------------------------
    def commands(self):
        """Yield (words, first_line, last_line) per simple command, unexpanded-assignment aware."""
        while self.i < len(self.chars):
            words, first, last = self._command()
            if words is not None:
                yield words, first, last

    def _command(self):
        words: list[Word] = []
        cur: list[tuple[str, int]] = []
        started = False
        first = last = self.line()
        assignment = False  # the current word is NAME=… (no splitting, tilde after '=')

        def finish():
            nonlocal cur, started, assignment
            if started or cur:
                words.append(_word(cur))
            cur, started, assignment = [], False, False

        def in_assignment_position() -> bool:
            return all(_is_assignment(w.text) for w in words) or (
                bool(words) and words[0].text in DECLARE_WORDS
            )

        while self.i < len(self.chars):
            c, ln = self.chars[self.i]
            last = ln
            if c == "\\" and self.peek(1) == "\n":
                self.i += 2
                continue
            if c == "\n" or c in SEPARATORS:
                finish()
                self.i += 1
                while c in SEPARATORS and self.peek() in SEPARATORS:
                    self.i += 1
                break
            if c in " \t\r":
                finish()
                self.i += 1
                continue
            if c == "#" and not cur and not started:
                while self.i < len(self.chars) and self.peek() != "\n":
                    self.i += 1
                continue
            if c == "\\":
                if self.i + 1 < len(self.chars):
                    cur.append(self.chars[self.i + 1])
                self.i += 2
                continue
            if c == "'":
                started = True
                self.i += 1
                while self.i < len(self.chars) and self.peek() != "'":
                    cur.append(self.chars[self.i])
                    self.i += 1
                if self.i >= len(self.chars):
                    self.state.unclosed("'", ln)
                self.i += 1
                continue
            if c == '"':
                started = True
                self.i += 1
                if not self._double_quoted(cur):
                    self.state.unclosed('"', ln)
                continue
            if c == "~" and not cur and not started:
                self._tilde(cur, ln)
                continue
            if (
                c == "="
                and not assignment
                and not started
                and NAME.fullmatch(_text(cur) or "-")
                and in_assignment_position()
            ):
                assignment = True
                cur.append((c, ln))
                self.i += 1
                if self.peek() == "~":
                    self._tilde(cur, ln)
                continue
            if c in "$`":
                value = self._expansion()
                if value is None:
                    continue
                text, lines = value
                if assignment:
                    cur += list(zip(text, lines, strict=True))
                    continue
                for ch, chl in zip(text, lines, strict=True):  # IFS splitting
                    if ch in " \t\n":
                        finish()
                    else:
                        cur.append((ch, chl))
                continue
            cur.append((c, ln))
            self.i += 1
        else:
            finish()
        if not words:
            return None, first, last
        return words, words[0].line, last

    def _tilde(self, cur: list, line: int) -> None:
        """`~` or `~/...` at a word start becomes $HOME (other `~user` forms stay)."""
        nxt = self.peek(1)
        if nxt in ("/", "", " ", "\t", "\n", ":", ";"):
            home = self.state.lookup("HOME", line, label="~")
            if home is not None:
                cur += [(ch, line) for ch in home[0]]
                self.i += 1
                return
        cur.append(("~", line))
        self.i += 1

    def _double_quoted(self, cur: list) -> bool:
        """Read up to the closing quote; False when the script ends first."""
        while self.i < len(self.chars):
            c, ln = self.chars[self.i]
            if c == '"':
                self.i += 1
                return True
            if c == "\\" and self.peek(1) in ('"', "\\", "$", "`", "\n"):
                if self.peek(1) != "\n":
                    cur.append(self.chars[self.i + 1])
                self.i += 2
                continue
            if c in "$`":
                value = self._expansion()
                if value is not None:
                    cur += list(zip(value[0], value[1], strict=True))
                continue
            cur.append((c, ln))
            self.i += 1
        return False

    def _expansion(self) -> tuple[str, list[int]] | None:
        """Expand the `$…` or backquote at the cursor; returns (text, lines)."""
        c, ln = self.chars[self.i]
        start = self.i
        if c == "`":
            self.i += 1
            while self.i < len(self.chars) and self.peek() != "`":
                self.i += 1
            self.i += 1
            return self._kept(
                start, ln, "is a command substitution, which the importer does not run"
            )
        nxt = self.peek(1)
        if nxt == "(":
            depth = 0
            self.i += 1
            while self.i < len(self.chars):
                ch = self.peek()
                depth += ch == "("
                depth -= ch == ")"
                self.i += 1
                if depth == 0:
                    break
            return self._kept(
                start, ln, "is a command substitution, which the importer does not run"
            )
        if nxt == "{":
            end = self.i + 2
            while end < len(self.chars) and self.chars[end][0] != "}":
                end += 1
            inner = "".join(ch for ch, _ in self.chars[self.i + 2 : end])
            self.i = end + 1
            m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-=])(.*))?", inner, re.S)
            if not m:
                return self._kept(
                    start, ln, "is a parameter expansion the importer does not evaluate"
                )
            name, op, default = m.group(1), m.group(2), m.group(3)
            value = self.state.lookup(name, ln) if not op else self._plain_lookup(name)
            if op and (value is None or (op.startswith(":") and value[0] == "")):
                value = self._default(default, ln)
                if op.endswith("="):
                    self.state.variables[name] = value
            if value is None:
                return self._kept(start, ln, "is not set in the script or the environment")
            return value
        m = NAME.match("".join(ch for ch, _ in self.chars[self.i + 1 : self.i + 65]))
        if m:
            self.i += 1 + m.end()
            value = self.state.lookup(m.group(0), ln)
            if value is None:
                return self._kept(start, ln, "is not set in the script or the environment")
            return value
        if nxt and (nxt.isdigit() or nxt in "@*#?$!-"):
            self.i += 2
            return self._kept(start, ln, "is a script argument or special parameter")
        self.i += 1
        return "$", [ln]

    def _plain_lookup(self, name: str):
        # `${X:-default}` asks whether X is set; the environment counts (as in bash).
        if name in self.state.variables:
            return self.state.variables[name]
        if name in self.state.environ:
            return self.state.lookup(name, self.line())
        return None

    def _default(self, text: str, line: int) -> tuple[str, list[int]]:
        sub = _Reader([(ch, line) for ch in text], self.state)
        out: list[tuple[str, int]] = []
        sub._double_quoted_until_end(out)
        return _text(out), [ln for _, ln in out]

    def _double_quoted_until_end(self, out: list) -> None:
        self.chars = self.chars + [('"', self.line())]
        self._double_quoted(out)

    def _kept(self, start: int, line: int, why: str) -> tuple[str, list[int]]:
        text = "".join(ch for ch, _ in self.chars[start : self.i])
        self.state.unresolved(text, line, why)
        return text, [line] * len(text)


def _word(chars: list[tuple[str, int]]) -> Word:
    lines = [ln for _, ln in chars]
    return Word(_text(chars), lines[0] if lines else 0, lines)


def _text(chars) -> str:
    return "".join(ch for ch, _ in chars)


def _is_assignment(text: str) -> bool:
    name, eq, _ = text.partition("=")
    return bool(eq) and bool(NAME.fullmatch(name))


def _located(text: str, first_line: int = 1) -> list[tuple[str, int]]:
    out, line = [], first_line
    for ch in text:
        out.append((ch, line))
        if ch == "\n":
            line += 1
    return out


def _join(words: list[Word]) -> list[tuple[str, int]]:
    """eval's argument string: the words joined by single spaces, each keeping its lines."""
    out: list[tuple[str, int]] = []
    for w in words:
        if out:
            out.append((" ", out[-1][1]))
        out += list(zip(w.text, w.lines or [w.line] * len(w.text), strict=True))
    return out


def _condition(words: list[Word], state: ShellState, line: int) -> bool:
    """`[ -z X ]`, `[ -n X ]`, `test -z X` (X already expanded); anything else is true."""
    texts = [w.text for w in words]
    for k, text in enumerate(texts):
        if state.kept.get(text) == line:  # an unset variable tests as empty, as in bash
            state.forget_unresolved(text, line)
            texts[k] = ""
    if texts and texts[0] in ("[", "[[", "test"):
        texts = [t for t in texts[1:] if t not in ("]", "]]")]
        if len(texts) == 2 and texts[0] in ("-z", "-n"):
            return (texts[1] == "") == (texts[0] == "-z")
        if len(texts) == 1 and texts[0] in ("-z", "-n"):
            return texts[0] == "-z"  # `[ -z "" ]`: the quoted empty word was dropped
    state.problems.append(
        Problem(
            WARNING,
            f"the condition on line {line} ({' '.join(texts)}) is not evaluated; the "
            "importer takes its `then` branch.",
            "Check the imported values that the condition sets.",
            file=state.file,
            line=line,
            code="shell_condition",
        )
    )
    return True


def read_commands(
    text: str, environ: Mapping[str, str], file: str = "<script>"
) -> tuple[list[Command], ShellState]:
    """Run the script's assignments and return every other command with its words expanded.

    `eval` commands come back as the command they evaluate; `echo`/`printf` commands and the
    `if`/`then`/`else`/`fi` keywords are consumed here."""
    state = ShellState(environ=environ, file=file)
    commands: list[Command] = []
    branches: list[bool] = []  # one entry per open `if`: is this branch taken?
    reader = _Reader(_located(text), state)
    for words, first, last in reader.commands():
        head = words[0].text
        if head in ("if", "elif"):
            taken = _condition(words[1:], state, first)
            if head == "elif":
                if branches:
                    branches[-1] = (not branches[-1]) and taken
            else:
                branches.append(taken)
            continue
        if head == "then" and len(words) > 1:
            words = words[1:]
            head = words[0].text
        elif head == "then":
            continue
        if head == "else":
            if branches:
                branches[-1] = not branches[-1]
            if len(words) == 1:
                continue
            words = words[1:]
            head = words[0].text
        if head == "fi":
            if branches:
                branches.pop()
            continue
        if not all(branches):
            continue
        if head in ("echo", "printf", ":", "set", "cd", "source", ".", "unset"):
            continue
        if head in DECLARE_WORDS or all(_is_assignment(w.text) for w in words):
            exported = head in DECLARE_WORDS and head == "export"
            for w in words[1:] if head in DECLARE_WORDS else words:
                if not _is_assignment(w.text):
                    if exported and w.text in state.variables:
                        state.exported[w.text] = state.variables[w.text][0]
                    continue
                name, _, value = w.text.partition("=")
                lines = (w.lines or [w.line] * len(w.text))[len(name) + 1 :]
                state.variables[name] = (value, lines)
                if exported:
                    state.exported[name] = value
            continue
        if head == "eval":
            inner = _Reader(_join(words[1:]), state)
            for sub, sub_first, sub_last in inner.commands():
                commands.append(Command(sub, sub_first, max(sub_last, last)))
            continue
        commands.append(Command(words, first, last))
    return commands, state
