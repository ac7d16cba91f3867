"""Training pairs from documents: for users who have a corpus, not labelled pairs.

Three ways to write a query for a document, each a row ``{"query", "pos", "neg": [],
"doc_id"}`` that ``data mine`` then gives negatives:

- ``title``: the document's title (or its first line / Markdown heading) is the query, the body
  the positive. Cheap and often good for titled corpora (papers, wiki pages, manuals).
- ``crop``: two independent random spans of one document are query and positive (Contriever's
  independent cropping): no labels, no model, works on any text.
- ``llm``: a language model writes questions a passage answers (``studio.datawork.llm_pairs``).

Every row keeps its source ``doc_id``, so later steps can keep a document from being its own
negative and a split by document never leaks. Documents are a BEIR ``corpus.jsonl`` (``_id``,
``title``, ``text``) or a folder of ``.txt``/``.md`` files (the id is the relative path).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from studio.facts.problems import WARNING, Problem

TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".rst")
METHODS = ("title", "crop", "llm")


@dataclass(frozen=True)
class Document:
    doc_id: str
    title: str
    text: str


class DocumentError(ValueError):
    """A corpus line or file that cannot be read as a document; names the file and line."""


def read_documents(path: str | Path) -> Iterator[Document]:
    """The documents of a BEIR ``corpus.jsonl`` (or any .jsonl of them) or a folder of text files.

    A text file's title is its first Markdown heading or, failing that, its first non-empty
    line; its text is everything else. A corpus line without ``_id`` or ``text`` is an error
    naming the line, since a silently skipped document would skew every later count.
    """
    path = Path(path)
    if path.is_dir():
        corpus = path / "corpus.jsonl"
        if corpus.is_file():
            yield from _jsonl_documents(corpus)
            return
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in TEXT_SUFFIXES)
        if not files:
            raise DocumentError(
                f"{path}: no corpus.jsonl and no text files ({', '.join(TEXT_SUFFIXES)}); "
                "give a BEIR corpus.jsonl or a folder of documents"
            )
        for file in files:
            title, body = split_title(file.read_text(encoding="utf-8", errors="replace"))
            yield Document(str(file.relative_to(path)), title, body)
        return
    if not path.is_file():
        raise DocumentError(f"{path}: no such file or folder")
    if path.suffix.lower() in TEXT_SUFFIXES:
        title, body = split_title(path.read_text(encoding="utf-8", errors="replace"))
        yield Document(path.name, title, body)
        return
    yield from _jsonl_documents(path)


def _jsonl_documents(path: Path) -> Iterator[Document]:
    with open(path, encoding="utf-8-sig") as fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except ValueError as exc:
                raise DocumentError(f"{path}:{lineno}: not JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise DocumentError(f"{path}:{lineno}: a document is a JSON object")
            doc_id = obj.get("_id", obj.get("id"))
            text = obj.get("text")
            if doc_id is None or not isinstance(text, str):
                raise DocumentError(
                    f"{path}:{lineno}: a document needs `_id` and a `text` string "
                    '(BEIR corpus: {"_id": "d1", "title": "...", "text": "..."})'
                )
            title = obj.get("title") if isinstance(obj.get("title"), str) else ""
            yield Document(str(doc_id), title.strip(), text.strip())


_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")


def split_title(text: str) -> tuple[str, str]:
    """(title, body) of a plain-text document: its first Markdown heading, else its first line."""
    lines = text.strip().splitlines()
    for i, line in enumerate(lines):
        match = _HEADING.match(line)
        if match:
            return match.group(1).strip(), "\n".join(lines[:i] + lines[i + 1 :]).strip()
    if not lines:
        return "", ""
    return lines[0].strip(), "\n".join(lines[1:]).strip()


@dataclass
class PairsResult:
    out_path: Path
    method: str
    documents: int = 0
    rows_written: int = 0
    skipped: int = 0
    resumed: int = 0
    failed: int = 0
    seconds: float = 0.0
    problems: list[Problem] = field(default_factory=list)

    def summary(self) -> dict:
        out = {
            "method": self.method,
            "documents": self.documents,
            "rows written": self.rows_written,
            "skipped": self.skipped,
        }
        if self.method == "llm":
            out["resumed"] = self.resumed
            out["failed"] = self.failed
        out["output"] = str(self.out_path)
        out["seconds"] = round(self.seconds, 1)
        return out


def row(query: str, positive: str, doc_id: str) -> dict:
    """One training row: no negatives yet (``data mine`` adds them), its source document kept."""
    return {"query": query, "pos": [positive], "neg": [], "doc_id": doc_id}


def title_rows(doc: Document, min_words: int = 2) -> list[dict]:
    """The title as the query and the body as the positive; none when either is too short."""
    if len(doc.title.split()) < min_words or not doc.text.strip():
        return []
    return [row(doc.title, doc.text, doc.doc_id)]


@dataclass(frozen=True)
class CropSettings:
    """Span lengths in words, Contriever-style: each span is a random window of the document."""

    query_words: tuple[int, int] = (8, 24)
    passage_words: tuple[int, int] = (48, 160)
    per_document: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("query_words", "passage_words"):
            low, high = getattr(self, name)
            if not 1 <= low <= high:
                raise ValueError(
                    f"--{name.replace('_', '-')} {low}-{high}: want 1 <= FROM <= TO, e.g. 8-24"
                )
        if self.per_document < 1:
            raise ValueError(f"--per-document {self.per_document}: want at least 1")


def crop_rows(doc: Document, settings: CropSettings, rng: random.Random) -> list[dict]:
    """Two independent random spans of one document, ``per_document`` times.

    A document shorter than the shortest query span cannot give a pair and is skipped; one
    shorter than a passage span gives its whole text as the positive.
    """
    words = f"{doc.title}\n{doc.text}".split() if doc.title else doc.text.split()
    if len(words) < max(settings.query_words[0] * 2, 4):
        return []
    out = []
    for _ in range(settings.per_document):
        query = _span(words, settings.query_words, rng)
        positive = _span(words, settings.passage_words, rng)
        if query and positive and query != positive:
            out.append(row(query, positive, doc.doc_id))
    return out


def _span(words: list[str], length: tuple[int, int], rng: random.Random) -> str:
    size = min(len(words), rng.randint(*length))
    start = rng.randint(0, len(words) - size)
    return " ".join(words[start : start + size])


def refuse_overwrite(out_path: Path, force: bool) -> None:
    if out_path.exists() and not force:
        raise FileExistsError(
            f"{out_path} already exists; choose another --out, or pass --force to replace it"
        )


def make_pairs(
    corpus: str | Path,
    out_path: str | Path,
    method: str,
    *,
    crop: CropSettings | None = None,
    limit: int | None = None,
    force: bool = False,
) -> PairsResult:
    """Write ``title`` or ``crop`` pairs for the documents of ``corpus`` to ``out_path``.

    (``llm`` pairs stream, retry and resume: see :func:`studio.datawork.llm_pairs.llm_pairs`.)
    """
    import time

    if method not in ("title", "crop"):
        raise ValueError(f"--from {method!r}: want one of {', '.join(METHODS)}")
    started = time.perf_counter()
    out_path = Path(out_path)
    refuse_overwrite(out_path, force)
    crop = crop or CropSettings()
    rng = random.Random(crop.seed)
    result = PairsResult(out_path, method)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = out_path.with_name(out_path.name + ".partial")
    with open(partial, "w", encoding="utf-8") as fh:
        for doc in read_documents(corpus):
            if limit is not None and result.documents >= limit:
                break
            result.documents += 1
            rows = title_rows(doc) if method == "title" else crop_rows(doc, crop, rng)
            if not rows:
                result.skipped += 1
            for r in rows:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
                result.rows_written += 1
    partial.replace(out_path)
    if result.skipped:
        why = (
            "no title of two words or more, or no body"
            if method == "title"
            else f"fewer than {max(crop.query_words[0] * 2, 4)} words"
        )
        result.problems.append(
            Problem(
                WARNING,
                f"{result.skipped:,} of {result.documents:,} documents gave no pair ({why}).",
                "Try `--from crop` for untitled documents, or shorter --query-words."
                if method == "title"
                else "Lower --query-words, or leave such short documents out.",
                file=str(corpus),
                code="pairs_skipped",
            )
        )
    result.problems.append(needs_negatives(out_path))
    result.seconds = time.perf_counter() - started
    return result


def needs_negatives(out_path: Path) -> Problem:
    """Pairs are not training rows yet: FlagEmbedding divides by the negatives' count."""
    return Problem(
        WARNING,
        "the rows have no negatives yet (`neg: []`); FlagEmbedding cannot train on them as is.",
        f"Mine them: python -m studio data mine {out_path} --model MODEL --out MINED.jsonl",
        file=str(out_path),
        code="pairs_need_negatives",
    )
