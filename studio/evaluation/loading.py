"""A plain model folder for whatever a fine-tune saved: full weights, or a LoRA adapter.

FlagEmbedding's decoder modules train LoRA by default (``use_lora`` is True for them): the output
folder and every ``checkpoint-N`` then hold only ``adapter_config.json`` and
``adapter_model.safetensors``, plus the tokenizer, and ``embedding/emb.pth`` when
``additional_special_tokens`` grew the vocabulary. Nothing downstream (the studio's encoder,
FlagEmbedding's inference classes, sentence-transformers) loads that directly, so
:func:`plain_model` merges the adapter into its base once and caches the merged folder (keyed by
the adapter's and the base's files), the way FlagEmbedding's own ``save_merged_model`` does it:

1. load the base with the module's model class (AutoModel for embedders, AutoModelForCausalLM for
   the decoder rerankers, or the class the module names: its ``merge_class``),
2. put back the resized input embeddings from ``embedding/emb.pth`` (the adapter's folder, else
   the run's output folder, where FlagEmbedding writes it once),
3. ``PeftModel.from_pretrained(...).merge_and_unload()``, save with the adapter's tokenizer.

``emb.pth`` is a pickled ``nn.Embedding`` that FlagEmbedding wrote with ``torch.save``: it is read
with ``weights_only=False`` because it is the run's own file (torch >= 2.6 refuses it otherwise,
which also breaks FlagEmbedding 1.4.2's own merge of such a run).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from studio.evaluation import cache
from studio.facts import modules as finetune

ADAPTER_CONFIG = "adapter_config.json"
EMBEDDING = Path("embedding") / "emb.pth"


def is_adapter(folder: str | Path) -> bool:
    """A LoRA adapter folder without full weights of its own."""
    root = Path(folder)
    return (root / ADAPTER_CONFIG).is_file() and not (root / "config.json").is_file()


def adapter_base(folder: str | Path) -> str | None:
    """The base model an adapter was trained on, as peft recorded it."""
    data = json.loads((Path(folder) / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    return data.get("base_model_name_or_path")


def find_embedding(folder: Path, output_dir: Path | None) -> Path | None:
    for root in (folder, folder.parent, output_dir):
        if root is not None and (root / EMBEDDING).is_file():
            return root / EMBEDDING
    return None


def _fingerprint(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for path in paths:
        stat = path.stat()
        h.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return h.hexdigest()[:24]


def plain_model(
    folder: str | Path,
    module: str,
    base: str | Path | None = None,
    output_dir: str | Path | None = None,
    cache_root: Path | None = None,
    trust_remote_code: bool = False,
) -> Path:
    """``folder`` itself when it holds a full model; else the adapter merged into ``base``."""
    folder = Path(folder)
    if not is_adapter(folder):
        return folder
    merged = folder / "merged_model"  # FlagEmbedding's own merge (save_merged_lora_model)
    if (merged / "config.json").is_file():
        return merged
    base = base or adapter_base(folder)
    if not base or not Path(str(base)).is_dir():
        raise FileNotFoundError(
            f"{folder} holds a LoRA adapter whose base model {base!r} is not a local folder. "
            "Fix: pass the base model's folder (the run's model_name_or_path)."
        )
    base = Path(str(base))
    embedding = find_embedding(folder, Path(output_dir) if output_dir else None)
    files = [p for p in folder.iterdir() if p.is_file()] + cache.model_files(base)
    files += [embedding] if embedding else []
    dest = (cache_root or cache.cache_root()) / "merged" / _fingerprint(sorted(files))
    if (dest / "config.json").is_file():
        return dest
    _merge(folder, base, module, embedding, dest, trust_remote_code)
    return dest


def _model_class(module: str):
    """The class a LoRA adapter of ``module`` is merged into (its ``merge_class``, else Auto*)."""
    own = finetune.get(module)
    if own.merge_class:
        from studio.facts.modules.base import resolve

        return resolve(own.merge_class)
    if own.is_reranker:
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM
    from transformers import AutoModel

    return AutoModel


def _merge(
    folder: Path,
    base: Path,
    module: str,
    embedding: Path | None,
    dest: Path,
    trust_remote_code: bool,
) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoTokenizer

    model = _model_class(module).from_pretrained(
        str(base), trust_remote_code=trust_remote_code or finetune.get(module).remote_code
    )
    if embedding is not None:
        model.set_input_embeddings(torch.load(embedding, map_location="cpu", weights_only=False))
        model.config.vocab_size = model.get_input_embeddings().weight.shape[0]
    model = PeftModel.from_pretrained(model, str(folder)).merge_and_unload()
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp)
    tokenizer_dir = folder if (folder / "tokenizer_config.json").is_file() else base
    AutoTokenizer.from_pretrained(str(tokenizer_dir)).save_pretrained(tmp)
    for code in base.glob("*.py"):  # remote code (e.g. MiniCPM's) travels with the weights
        shutil.copy(code, tmp / code.name)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.replace(dest)
