"""What FlagEmbedding's dataclasses do not say: grouping, the basic set, labels, UI hints.

One small table keyed by flag name, kept beside the generated schema (:mod:`studio.facts.schema`)
so that the web UI, the notebook and the CLI all read the same words. A flag missing here
still works everywhere: it lands in a group chosen by its name and gets a label made from it.
"""

from __future__ import annotations

from studio.facts import modules
from studio.facts.modules.base import LORA_FLAGS

# The flags of the seed script (FlagEmbedding's documented example), in its order, plus the
# passage instruction pair the seed meant to set. These are shown first, everything else in
# accordions by group.
BASIC: tuple[str, ...] = (
    "model_name_or_path",
    "output_dir",
    "train_data",
    "overwrite_output_dir",
    "trust_remote_code",
    "num_train_epochs",
    "max_steps",
    "train_group_size",
    "per_device_train_batch_size",
    "learning_rate",
    "query_max_len",
    "passage_max_len",
    "query_instruction_for_retrieval",
    "query_instruction_format",
    "passage_instruction_for_retrieval",
    "passage_instruction_format",
    "knowledge_distillation",
    "fp16",
    "bf16",
    "cache_dir",
    "cache_path",
    "dataloader_drop_last",
    "warmup_ratio",
    "gradient_checkpointing",
    "logging_steps",
    "save_steps",
    "negatives_cross_device",
    "temperature",
    "sentence_pooling_method",
    "normalize_embeddings",
    "kd_loss_type",
)

# Per fine-tune module, the flags of FlagEmbedding's own example script for it that BASIC lacks,
# in the script's order (examples/finetune/ in its repository): each module's ``basic``
# (studio.modules). A module's basic set is BASIC plus these, minus what its dataclasses lack.
BASIC_EXTRA: dict[str, tuple[str, ...]] = {
    name: m.basic for name, m in modules.MODULES.items() if m.basic
}


def basic_names(module: str) -> tuple[str, ...]:
    """The basic set of a module, in order (names its dataclasses lack are skipped later)."""
    return BASIC + BASIC_EXTRA.get(module, ())


_SHARED_ORDER: tuple[str, ...] = (
    "Model",
    "Data",
    "Embedding loss",
    "LoRA & LLM",
    "Optimization",
    "Schedule & steps",
    "Precision & speed",
    "Checkpoints & saving",
    "Logging",
    "Distributed",
    "Hub",
    "Evaluation",
    "Other",
)


def _group_order() -> tuple[str, ...]:
    """The shared groups, each module's own group after the one it names (studio.modules)."""
    out = list(_SHARED_ORDER)
    for m in modules.MODULES.values():
        if m.group is not None:
            out.insert(out.index(m.group.after) + 1, m.group.name)
    return tuple(out)


GROUP_ORDER: tuple[str, ...] = _group_order()

GROUP_ZH: dict[str, str] = {
    "Basic": "基础参数",
    "Model": "模型",
    "Data": "数据",
    "Embedding loss": "向量损失",
    "LoRA & LLM": "LoRA 与大模型",
    "Optimization": "优化器",
    "Schedule & steps": "训练步数与学习率调度",
    "Precision & speed": "精度与速度",
    "Checkpoints & saving": "检查点与保存",
    "Logging": "日志",
    "Distributed": "分布式",
    "Hub": "模型仓库",
    "Evaluation": "评估",
    "Other": "其他",
    **{m.group.name: m.group.zh for m in modules.MODULES.values() if m.group is not None},
}

_EXPLICIT_GROUP: dict[str, str] = {
    "temperature": "Embedding loss",
    "negatives_cross_device": "Embedding loss",
    "sub_batch_size": "Embedding loss",
    "kd_loss_type": "Embedding loss",
    "use_mrl": "Embedding loss",
    "mrl_dims": "Embedding loss",
    "sentence_pooling_method": "Embedding loss",
    "normalize_embeddings": "Embedding loss",
    "fix_position_embedding": "Embedding loss",
    **dict.fromkeys(
        (
            *LORA_FLAGS,
            "peft_model_path",
            "from_peft",
            "raw_peft",
            "modules_to_save",
            "only_merge_lora_model",
            "additional_special_tokens",
            "use_slow_tokenizer",
        ),
        "LoRA & LLM",
    ),
    "seed": "Optimization",
    "data_seed": "Optimization",
    "gradient_checkpointing": "Precision & speed",
    "gradient_checkpointing_kwargs": "Precision & speed",
    "torch_compile": "Precision & speed",
    "output_dir": "Checkpoints & saving",
    "overwrite_output_dir": "Checkpoints & saving",
    "resume_from_checkpoint": "Checkpoints & saving",
    "local_rank": "Distributed",
    "ddp_backend": "Distributed",
    "ddp_timeout": "Distributed",
    "report_to": "Logging",
    "disable_tqdm": "Logging",
    "run_name": "Logging",
    "num_train_epochs": "Schedule & steps",
    "max_steps": "Schedule & steps",
    "warmup_ratio": "Schedule & steps",
    "warmup_steps": "Schedule & steps",
    **{
        flag: m.group.name
        for m in modules.MODULES.values()
        if m.group is not None
        for flag in m.group.flags
    },
}

# Name fragments → group, tried in order for training flags without an explicit group.
_PATTERNS: tuple[tuple[str, str], ...] = (
    ("hub", "Hub"),
    ("eval", "Evaluation"),
    ("metric", "Evaluation"),
    ("predict", "Evaluation"),
    ("save", "Checkpoints & saving"),
    ("checkpoint", "Checkpoints & saving"),
    ("log", "Logging"),
    ("fp16", "Precision & speed"),
    ("bf16", "Precision & speed"),
    ("tf32", "Precision & speed"),
    ("half_precision", "Precision & speed"),
    ("torch_compile", "Precision & speed"),
    ("dataloader", "Precision & speed"),
    ("fsdp", "Distributed"),
    ("ddp", "Distributed"),
    ("tpu", "Distributed"),
    ("deepspeed", "Distributed"),
    ("accelerator", "Distributed"),
    ("parallel", "Distributed"),
    ("lr", "Optimization"),
    ("learning_rate", "Optimization"),
    ("adam", "Optimization"),
    ("optim", "Optimization"),
    ("weight_decay", "Optimization"),
    ("grad", "Optimization"),
    ("batch_size", "Optimization"),
    ("warmup", "Schedule & steps"),
    ("epoch", "Schedule & steps"),
    ("steps", "Schedule & steps"),
)


def group_of(name: str, section: str) -> str:
    """The UI group of a flag: explicit table first, then the dataclass, then its name."""
    if name in _EXPLICIT_GROUP:
        return _EXPLICIT_GROUP[name]
    if section == "model":
        return "Model"
    if section == "data":
        return "Data"
    for fragment, group in _PATTERNS:
        if fragment in name:
            return group
    return "Other"


# Chinese labels for the basic set (the seed document's own terms where it has them).
ZH: dict[str, str] = {
    "model_name_or_path": "模型名称或路径",
    "output_dir": "输出目录",
    "train_data": "训练数据",
    "overwrite_output_dir": "覆盖输出目录",
    "trust_remote_code": "信任远程代码",
    "num_train_epochs": "训练轮数",
    "max_steps": "最大训练步数",
    "train_group_size": "每组样本数（1 正例 + 负例）",
    "per_device_train_batch_size": "每设备批大小",
    "learning_rate": "学习率",
    "query_max_len": "查询最大长度",
    "passage_max_len": "文档最大长度",
    "query_instruction_for_retrieval": "查询指令",
    "query_instruction_format": "查询指令格式",
    "passage_instruction_for_retrieval": "文档指令",
    "passage_instruction_format": "文档指令格式",
    "knowledge_distillation": "知识蒸馏",
    "fp16": "FP16 混合精度",
    "bf16": "BF16 混合精度",
    "cache_dir": "模型缓存目录",
    "cache_path": "数据缓存目录",
    "dataloader_drop_last": "丢弃最后不完整批次",
    "warmup_ratio": "预热比例",
    "gradient_checkpointing": "梯度检查点",
    "logging_steps": "日志间隔步数",
    "save_steps": "保存间隔步数",
    "negatives_cross_device": "跨设备共享负例",
    "temperature": "温度系数",
    "sentence_pooling_method": "句向量池化方式",
    "normalize_embeddings": "向量归一化",
    "kd_loss_type": "蒸馏损失类型",
    "colbert_dim": "ColBERT 向量维度",
    "unified_finetuning": "统一微调（稠密 + 稀疏 + ColBERT）",
    "use_self_distill": "自蒸馏",
    "fix_encoder": "冻结编码器",
    "self_distill_start_step": "自蒸馏起始步数",
    "use_lora": "使用 LoRA",
    "lora_rank": "LoRA 秩",
    "lora_alpha": "LoRA alpha",
    "lora_dropout": "LoRA dropout",
    "target_modules": "LoRA 目标模块",
    "save_merged_lora_model": "保存合并 LoRA 后的模型",
    "use_flash_attn": "使用 Flash Attention",
    "additional_special_tokens": "额外特殊词元",
    "example_query_max_len": "示例查询最大长度",
    "example_passage_max_len": "示例文档最大长度",
    "retrieval_use_examples": "检索任务使用示例",
    "icl_suffix_str": "ICL 后缀字符串",
    "max_len": "查询 + 文档最大长度",
    "query_instruction_for_rerank": "重排序查询指令",
    "passage_instruction_for_rerank": "重排序文档指令",
    "sep_token": "查询与文档分隔符",
    "model_type": "模型类型",
    "start_layer": "起始计分层",
    "head_multi": "多分类头",
    "head_type": "分类头类型",
}

# English labels where the flag name reads badly as words.
EN: dict[str, str] = {
    "model_name_or_path": "Model (folder or hub id)",
    "train_data": "Training data (files or folders)",
    "train_group_size": "Group size (1 positive + negatives)",
    "per_device_train_batch_size": "Batch size per device",
    "query_instruction_for_retrieval": "Query instruction",
    "passage_instruction_for_retrieval": "Passage instruction",
    "sentence_pooling_method": "Pooling",
    "max_len": "Max length (query + passage)",
    "sep_token": "Separator between query and passage",
    "colbert_dim": "ColBERT dimension (-1: the hidden size)",
    "query_instruction_for_rerank": "Query instruction (rerank)",
    "passage_instruction_for_rerank": "Passage instruction (rerank)",
    "fp16": "FP16 mixed precision",
    "bf16": "BF16 mixed precision",
}


def label(name: str, lang: str = "en") -> str:
    """The label of a flag in a language ("en" or "zh"); falls back to the flag made readable."""
    if lang == "zh" and name in ZH:
        return ZH[name]
    if name in EN:
        return EN[name]
    return name.replace("_", " ").capitalize()


def field_label(name: str, lang: str = "en") -> str:
    """The label a face shows for a flag: the words, then the flag itself for the docs."""
    return f"{label(name, lang)} · {name}"


def group_label(group: str, lang: str = "en") -> str:
    return GROUP_ZH.get(group, group) if lang == "zh" else group
