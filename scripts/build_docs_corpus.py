"""Build a documents-only corpus (BEIR ``corpus.jsonl``) from numpy's and pandas' docstrings.

A domain the studio was not tuned on (its example data is Python standard-library search), for
``studio adapt`` and ``bench/bench_from_documents.py``: every public function and method with a
real docstring is one document whose ``title`` is the docstring's summary line (what a user
would type: "Compute the qr factorization of a matrix.") and whose ``text`` is the rest,
headed by the object's name (parameters, returns, notes), trimmed to ~120 words.

Offline and deterministic for given numpy/pandas versions (both are dependencies of the studio;
their docstrings are BSD-3-Clause). Run from the repository root::

    python scripts/build_docs_corpus.py --out /tmp/docs-corpus [--limit 1500]
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import re
from pathlib import Path

SOURCES = [
    "numpy",
    "numpy.linalg",
    "numpy.fft",
    "numpy.random",
    "numpy.ma",
    "numpy.polynomial.polynomial",
    "pandas",
    "pandas.DataFrame",
    "pandas.Series",
    "pandas.Index",
    "pandas.api.types",
]
MAX_WORDS = 120
MIN_WORDS = 25
_SIGNATURE = re.compile(r"^[\w.]+\(.*\)(\s*->.*)?$", re.S)


def _objects(source: str):
    module_name, _, attr = source.partition(":")
    try:
        owner = importlib.import_module(source)
    except ImportError:
        parent, _, name = source.rpartition(".")
        owner = getattr(importlib.import_module(parent), name)
    for name in sorted(dir(owner)):
        if name.startswith("_"):
            continue
        try:
            obj = getattr(owner, name)
        except Exception:  # noqa: BLE001 - some attributes raise on access
            continue
        if callable(obj) and not inspect.ismodule(obj):
            yield f"{source}.{name}", obj


def _document(qualname: str, obj) -> dict | None:
    doc = inspect.getdoc(obj) or ""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", doc) if p.strip()]
    while paragraphs and _SIGNATURE.match(paragraphs[0]):  # ufuncs start with their signature
        paragraphs.pop(0)
    if len(paragraphs) < 2:
        return None
    summary = " ".join(paragraphs[0].split())
    if summary.startswith((".. ", "Alias", "alias")) or len(summary.split()) < 4:
        return None
    body = " ".join(" ".join(paragraphs[1:]).split())
    body = re.sub(r"-{3,}", "", body)  # numpydoc section underlines
    body = re.sub(r">>>.*", "", body)  # examples
    words = body.split()
    if len(words) < MIN_WORDS:
        return None
    text = f"{qualname}: " + " ".join(words[:MAX_WORDS])
    return {"_id": qualname, "title": summary, "text": text}


def build(limit: int | None = None) -> list[dict]:
    seen_summaries: set[str] = set()
    docs = []
    for source in SOURCES:
        for qualname, obj in _objects(source):
            document = _document(qualname, obj)
            if document is None or document["title"] in seen_summaries:
                continue  # aliases share a docstring: one document each
            seen_summaries.add(document["title"])
            docs.append(document)
    docs.sort(key=lambda d: d["_id"])
    return docs[:limit] if limit else docs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder for corpus.jsonl")
    parser.add_argument("--limit", type=int, help="at most this many documents (sorted by name)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    docs = build(args.limit)
    with open(out / "corpus.jsonl", "w", encoding="utf-8") as fh:
        for d in docs:
            fh.write(json.dumps(d, ensure_ascii=False) + "\n")
    print(f"{len(docs)} documents -> {out / 'corpus.jsonl'}")


if __name__ == "__main__":
    main()
