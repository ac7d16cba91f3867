"""Embeddings on disk, keyed by what determines them, so no model encodes the same texts twice.

Comparing five checkpoints against the base model, or re-running an evaluation after changing
only the cutoffs, should encode the base model once. An entry is one ``.npy`` array keyed by a
hash of

* the model files that decide its output: weights, config.json and tokenizer files, each by
  name, size and modification time (a rerun that overwrites a checkpoint changes the mtime;
  files the studio writes beside the model, like the model card or modules.json, do not count),
* the exact texts encoded, after instructions were applied,
* pooling, normalization and max length, and a format version.

The cache root is ``$BGE_STUDIO_CACHE`` or ``~/.cache/bge-studio``; entries live under
``embeddings/``. Writes are atomic (temp file, then rename) so a crash never leaves half an
array, and a corrupt entry is treated as missing.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

CACHE_ENV = "BGE_STUDIO_CACHE"
FORMAT_VERSION = 1
_WEIGHT_SUFFIXES = (".safetensors",)
_MODEL_FILES = {
    "config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "merges.txt",
    "vocab.txt",
    "vocab.json",
    "spiece.model",
    "sentencepiece.bpe.model",
}


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "bge-studio").expanduser()


def embeddings_dir(root: Path | None = None) -> Path:
    return (root or cache_root()) / "embeddings"


def _counts(name: str) -> bool:
    if name in _MODEL_FILES or name.startswith("tokenizer") or name.endswith(_WEIGHT_SUFFIXES):
        return True
    return name.endswith(".bin") and name.startswith(("pytorch_model", "model"))


def model_files(model_dir: str | Path, extra: tuple[str, ...] = ()) -> list[Path]:
    """The files of a model folder that decide its embeddings (not checkpoints, not cards);
    ``extra`` names more that do for some models (a module's heads, e.g. ``colbert_linear.pt``)."""
    root = Path(model_dir)
    return sorted(p for p in root.iterdir() if p.is_file() and (_counts(p.name) or p.name in extra))


def model_fingerprint(model_dir: str | Path, extra: tuple[str, ...] = ()) -> str:
    files = model_files(model_dir, extra)
    if not files:
        raise FileNotFoundError(f"{model_dir}: no model weights or config found")
    h = hashlib.sha256()
    for path in files:
        stat = path.stat()
        h.update(f"{path.name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return h.hexdigest()


def texts_fingerprint(texts: list[str]) -> str:
    h = hashlib.sha256()
    for text in texts:
        data = text.encode("utf-8")
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def embedding_key(model_fp: str, texts_fp: str, **settings) -> str:
    payload = json.dumps(
        {"v": FORMAT_VERSION, "model": model_fp, "texts": texts_fp, **settings}, sort_keys=True
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def _path(key: str, root: Path | None) -> Path:
    return embeddings_dir(root) / key[:2] / f"{key}.npy"


def load(key: str, root: Path | None = None) -> np.ndarray | None:
    path = _path(key, root)
    if not path.is_file():
        return None
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None


def save(key: str, array: np.ndarray, root: Path | None = None) -> Path:
    path = _path(key, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npy")
    np.save(tmp, np.asarray(array, dtype=np.float32), allow_pickle=False)
    tmp.replace(path)
    return path


def load_arrays(key: str, root: Path | None = None) -> dict[str, np.ndarray] | None:
    """Several named arrays stored under one key (e.g. a model's dense, sparse and ColBERT outputs)."""
    path = _path(key, root).with_suffix(".npz")
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError):
        return None


def save_arrays(key: str, arrays: dict[str, np.ndarray], root: Path | None = None) -> Path:
    path = _path(key, root).with_suffix(".npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)
    return path


def cached(
    key: str,
    compute: Callable[[], Any],
    root: Path | None,
    use_cache: bool,
    valid: Callable[[Any], bool],
    arrays: bool = False,
) -> tuple[Any, bool]:
    """``(entry, True)`` when ``use_cache`` and a stored entry passes ``valid`` (e.g. it has one
    row per text); else ``(compute(), False)``, stored when ``use_cache``.

    Every scorer (embeddings, a module's named ``arrays``, reranker scores) goes through here, so an
    entry is read, checked and written the same way whatever made it.
    """
    load_entry, save_entry = (load_arrays, save_arrays) if arrays else (load, save)
    if use_cache:
        found = load_entry(key, root)
        if found is not None and valid(found):
            return found, True
    value = compute()
    if use_cache:
        save_entry(key, value, root)
    return value, False
