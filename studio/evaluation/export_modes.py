"""Making every module's fine-tuned model load where its users load it, with a model card.

The base embedder's export (:mod:`.export`) writes sentence-transformers files; the other modules
are loaded elsewhere, so each gets what its loader needs and a card that shows that loader. What
differs by module is declared in its file (:mod:`studio.facts.modules`): ``st_files`` (a full or merged
model also gets sentence-transformers files: an encoder's dense head with CLS pooling, a decoder
embedder with last-token pooling), ``cross_encoder`` (``config.json`` tells sentence-transformers'
``CrossEncoder`` to return the raw logit, so its scores equal ``FlagReranker``'s), ``usage`` (the
card's loading lines: the merged folder, ``merged_model/`` with ``save_merged_lora_model``, or the
base plus ``peft_path=`` the adapter, the base named in the card) and ``card_what``.

:func:`export_model` is what the post-training step calls for every run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from studio.evaluation.export import (
    ALT_CARD,
    CARD_MARKER,
    ExportResult,
    _base_model_id,
    _version,
    card_text,
    export_sentence_transformers,
)
from studio.evaluation.modes import BASE, arg, kind_of, module_of
from studio.facts import modules as finetune
from studio.facts.modules.base import Usage

MERGED = "merged_model"  # where FlagEmbedding's save_merged_lora_model writes
IDENTITY = "torch.nn.modules.linear.Identity"


def export_model(
    model_dir: str | Path, config, metrics: Any = None, overwrite_readme: bool = False
) -> ExportResult:
    """Write what the module's loader needs and the model card into ``model_dir``."""
    from studio.core import config as config_mod
    from studio.evaluation.loading import is_adapter

    if isinstance(config, str | Path):
        config = config_mod.load(config)
    module = module_of(config)
    model_dir = Path(model_dir)
    if module == BASE:
        return export_sentence_transformers(model_dir, config, metrics, overwrite_readme)
    kind_of(module)  # a clear error for an unknown module
    adapter = is_adapter(model_dir)
    merged = model_dir / MERGED if (model_dir / MERGED / "config.json").is_file() else None
    if not adapter and not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"{model_dir}: neither a model (config.json) nor a LoRA adapter")
    result = ExportResult(model_dir=model_dir)
    full = None if adapter else model_dir
    st_folder = full or merged
    own = finetune.get(module)
    if own.cross_encoder:
        _crossencoder_config(model_dir, result)
    elif own.st_files and st_folder is not None:
        st = export_sentence_transformers(st_folder, config, metrics, overwrite_readme=True)
        result.files += [f for f in st.files if f.name != "README.md" and f != st.card]
        result.warnings += [w for w in st.warnings if "model card" not in w]
        if st.card is not None and st_folder != model_dir:
            st.card.unlink(missing_ok=True)
    if adapter and merged is None:
        result.warnings.append(
            "saved as a LoRA adapter (no merged_model/): load it with its base model named in "
            "the card, or set save_merged_lora_model: true to get a merged copy."
        )
    text = module_card(model_dir, config, module, adapter, merged, metrics, result.warnings)
    readme = model_dir / "README.md"
    if (
        readme.exists()
        and not overwrite_readme
        and not _replaceable(readme.read_text(encoding="utf-8", errors="replace"))
    ):
        readme = model_dir / ALT_CARD
        result.warnings.append(f"kept the existing README.md; the model card is in {ALT_CARD}")
    readme.write_text(text, encoding="utf-8")
    result.files.append(readme)
    result.card = readme
    return result


def _replaceable(text: str) -> bool:
    """Our own card, or the empty template peft's save_pretrained writes beside an adapter."""
    peft_template = "library_name: peft" in text and "# Model Card for Model ID" in text
    return CARD_MARKER in text or peft_template


def _crossencoder_config(model_dir: Path, result: ExportResult) -> None:
    """Tell sentence-transformers' CrossEncoder to return the raw logit, as FlagReranker does."""
    path = model_dir / "config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    st = dict(config.get("sentence_transformers") or {})
    st["activation_fn"] = IDENTITY
    st.setdefault("version", _version("sentence-transformers"))
    config["sentence_transformers"] = st
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    result.files.append(path)


def _usage(
    module: str, name: str, base: str, adapter: bool, merged: Path | None, config
) -> list[str]:
    """Python lines that load this model where users load it (the module's ``usage``)."""
    usage = finetune.get(module).usage
    if usage is None:
        return []
    return usage(
        Usage(
            name=f"{name}/{MERGED}" if merged is not None else name,
            base=base,
            adapter=adapter and merged is None,
            query_instruction=arg(config, "query_instruction_for_retrieval", module),
            query_format=arg(config, "query_instruction_format", module) or "{}{}",
        )
    )


def module_card(
    model_dir: Path,
    config,
    module: str,
    adapter: bool,
    merged: Path | None,
    metrics: Any = None,
    notes: list[str] | None = None,
) -> str:
    """The model card of a fine-tune of ``module``: how to load it, its metrics, its config."""
    base_id = _base_model_id(config)
    base = base_id or str(config.args.get("model_name_or_path") or "BASE_MODEL")
    kind = kind_of(module)
    front: dict[str, Any] = {
        "library_name": "peft" if adapter and merged is None else "transformers",
        "pipeline_tag": "text-classification" if kind == "reranker" else "feature-extraction",
        "tags": ["bge-studio", "flagembedding", module.split(".")[0], module],
    }
    form = "a LoRA adapter" if adapter and merged is None else "a full model"
    intro = (
        f"{finetune.get(module).card_words} fine-tuned with [FlagEmbedding](https://github.com/FlagOpen/FlagEmbedding) "
        f"{_version('FlagEmbedding')} (`FlagEmbedding.finetune.{module}`) in BGE Studio, "
        f"saved as {form}, from `{base}`."
        + (f" The merged model is in `{MERGED}/`." if merged is not None else "")
    )
    usage = _usage(module, model_dir.name, base, adapter, merged, config)
    args = {"module": module, **config.args}
    return card_text(model_dir, front, base_id, intro, usage, metrics, notes, args)
