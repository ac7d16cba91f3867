"""Problems found in a config, a script or data: what is wrong, where, and the fix.

Every check in the studio returns these instead of printing or raising, so the CLI can print
them, the web UI can mark the field, and the notebook can show a table — from one list.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

ERROR = "error"
WARNING = "warning"
INFO = "info"


@dataclass(frozen=True)
class Problem:
    level: str  # "error" | "warning" | "info"
    message: str
    fix: str = ""
    field: str | None = None  # the flag or config key it is about
    file: str | None = None
    line: int | None = None
    code: str = ""  # a stable identifier, for tests and for filtering

    def where(self) -> str:
        parts = []
        if self.file:
            parts.append(f"{self.file}:{self.line}" if self.line else self.file)
        if self.field:
            parts.append(self.field)
        return " ".join(parts)

    def __str__(self) -> str:
        where = self.where()
        text = f"{self.level}: {where + ': ' if where else ''}{self.message}"
        return f"{text} Fix: {self.fix}" if self.fix else text

    def to_dict(self) -> dict:
        return asdict(self)


def errors(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.level == ERROR]


def has_errors(problems: list[Problem]) -> bool:
    return any(p.level == ERROR for p in problems)


def closest_name(key: str, names: Sequence[str]) -> str | None:
    """The valid name a typo most likely meant (`--learnig_rate` -> `learning_rate`), or None."""
    match = difflib.get_close_matches(
        key.lstrip("-").replace("-", "_"), list(names), n=1, cutoff=0.6
    )
    return match[0] if match else None


def unknown_name(
    key: str,
    names: Sequence[str],
    message: str,
    *,
    otherwise: str | None = None,
    spell: Callable[[str], str] = lambda name: f"`{name}`",
    code: str = "unknown_key",
    field: str | None = None,
    file: str | None = None,
    line: int | None = None,
) -> Problem:
    """The one "unknown name" error: the fix is the closest valid name ("Did you mean ...?"),
    else `otherwise`, else the list of valid names."""
    guess = closest_name(key, names)
    if guess:
        fix = f"Did you mean {spell(guess)}?"
    else:
        fix = otherwise or f"Use one of {', '.join(names)}."
    return Problem(ERROR, message, fix, field=field, file=file, line=line, code=code)
