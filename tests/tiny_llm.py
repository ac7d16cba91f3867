"""Tiny causal language models built locally from a config, for pipeline tests of the decoder modes.

No machine here reaches a model hub, and a real LLM is gigabytes, so the decoder embedder and the
decoder rerankers are exercised on 2-layer models built from a config: a byte-level BPE tokenizer
trained on the repository's example data (so "Yes", the instruction markers and the texts all
tokenize) and random weights. They prove the *pipeline* (training, LoRA through peft, merging,
evaluation, export, loading in FlagEmbedding's inference classes), not model quality.

``build_llama(folder)``      a LlamaForCausalLM (what ``embedder.decoder_only.*`` and
                             ``reranker.decoder_only.base`` load with AutoModel/AutoModelForCausalLM)
``build_layerwise(folder)``  FlagEmbedding's LayerWiseMiniCPMForCausalLM in the shape of
                             bge-reranker-v2-minicpm-layerwise (a one-logit head per layer from
                             ``start_layer``), with its code files and ``auto_map`` so that
                             ``trust_remote_code`` loads it as the real one loads
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SPECIALS = ["<unk>", "<s>", "</s>"]


def _texts() -> list[str]:
    texts = []
    for line in (REPO / "example_data" / "train.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        texts.append(row["query"])
        texts.extend(row["pos"] + row["neg"])
    return texts + ["Yes", "No", "A: ", "B: ", "<instruct>", "<query>", "<response>"]


def build_tokenizer(folder: Path, vocab_size: int = 600):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(_texts(), trainer)
    fast = LlamaTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        add_bos_token=True,
        add_eos_token=False,
        legacy=False,
        from_slow=False,
    )
    fast.save_pretrained(folder)
    return fast


def build_llama(folder: str | Path, layers: int = 2, seed: int = 0) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer(folder)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        tie_word_embeddings=False,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def build_layerwise(folder: str | Path, layers: int = 2, seed: int = 0) -> Path:
    import torch
    from FlagEmbedding.finetune.reranker.decoder_only.layerwise import (
        configuration_minicpm_reranker as conf_mod,
    )
    from FlagEmbedding.finetune.reranker.decoder_only.layerwise import (
        modeling_minicpm_reranker as model_mod,
    )

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer(folder)
    torch.manual_seed(seed)
    config = conf_mod.LayerWiseMiniCPMConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.unk_token_id,
        start_layer=1,
        head_multi=True,
        head_type="simple",
        tie_word_embeddings=False,
    )
    config.auto_map = {
        "AutoConfig": "configuration_minicpm_reranker.LayerWiseMiniCPMConfig",
        "AutoModel": "modeling_minicpm_reranker.LayerWiseMiniCPMModel",
        "AutoModelForCausalLM": "modeling_minicpm_reranker.LayerWiseMiniCPMForCausalLM",
    }
    model_mod.LayerWiseMiniCPMForCausalLM(config).save_pretrained(folder)
    for module in (conf_mod, model_mod):
        shutil.copy(module.__file__, folder / Path(module.__file__).name)
    return folder
