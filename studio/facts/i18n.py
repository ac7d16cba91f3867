"""Words of the faces (web UI, notebook) in English and Chinese; flag labels: studio.labels."""

from __future__ import annotations

LANGS = ("en", "zh")

TEXT: dict[str, tuple[str, str]] = {
    "title": ("BGE Studio", "BGE Studio 向量模型微调工作台"),
    "subtitle": (
        "Fine-tune BGE embedding models with FlagEmbedding: configure, check, run, watch, compare.",
        "用 FlagEmbedding 微调 BGE 向量模型：配置、检查、训练、监控、对比。",
    ),
    "language": ("Language", "语言"),
    "module": ("Fine-tune module", "微调模块"),
    "tab.model": ("Model & data", "模型与数据"),
    "tab.training": ("Training", "训练参数"),
    "tab.launch": ("Launch", "启动设置"),
    "tab.command": ("Command", "命令"),
    "tab.train": ("Train", "训练"),
    "tab.runs": ("Runs", "历史运行"),
    "tab.data": ("Data", "数据"),
    "tab.evaluate": ("Evaluate", "评估"),
    "basic": ("Basic", "基础参数"),
    "bundled_hint": (
        "The bundled model: bundled:all-MiniLM-L6-v2 (offline, mean pooling).",
        "内置模型：bundled:all-MiniLM-L6-v2（离线可用，mean 池化）。",
    ),
    "precision": ("Precision", "精度"),
    "nproc_per_node": ("Processes per node (GPUs)", "每节点进程数（GPU 数）"),
    "nnodes": ("Nodes", "节点数"),
    "node_rank": ("Node rank", "节点序号"),
    "master_addr": ("Master address", "主节点地址"),
    "master_port": ("Master port (empty: a free port)", "主节点端口（留空自动选择）"),
    "ds_mode": ("DeepSpeed", "DeepSpeed"),
    "ds_stage": ("ZeRO stage", "ZeRO 阶段"),
    "ds_precision": (
        "DeepSpeed precision (auto: follows fp16/bf16)",
        "DeepSpeed 精度（auto：跟随 fp16/bf16）",
    ),
    "ds_offload_optimizer": ("Offload optimizer to CPU", "优化器卸载到 CPU"),
    "ds_offload_param": ("Offload parameters to CPU (stage 3)", "参数卸载到 CPU（阶段 3）"),
    "ds_file": ("DeepSpeed JSON file", "DeepSpeed JSON 文件"),
    "hardware": ("Hardware the studio sees", "检测到的硬件"),
    "command": ("Shell script (runs with FlagEmbedding alone)", "Shell 脚本（仅需 FlagEmbedding）"),
    "download_script": ("Download command.sh", "下载 command.sh"),
    "download_config": ("Download config.yaml", "下载 config.yaml"),
    "config_path": ("Config file path", "配置文件路径"),
    "save_config": ("Save config", "保存配置"),
    "overwrite": ("Overwrite an existing file", "覆盖已存在的文件"),
    "load_config": ("Load config", "加载配置"),
    "upload_config": ("…or upload a config", "……或上传配置文件"),
    "script_path": ("Script path", "脚本路径"),
    "script_base": (
        "Folder the script ran from (for relative paths)",
        "脚本运行目录（用于解析相对路径）",
    ),
    "import_script": ("Import script", "导入脚本"),
    "upload_script": ("…or upload a script", "……或上传脚本"),
    "diagnostics": ("Diagnostics", "诊断结果"),
    "preflight": ("Pre-flight checks", "训练前检查"),
    "start": ("Start training", "开始训练"),
    "stop": ("Stop", "停止"),
    "clear_locks": ("Clear stale build locks", "清除失效的编译锁"),
    "status": ("Status", "状态"),
    "log": ("Log (tail)", "日志（末尾）"),
    "refresh": ("Refresh", "刷新"),
    "run": ("Run", "运行"),
    "load_run_config": ("Load its config into the form", "将其配置载入表单"),
    "resume": ("Resume from last checkpoint", "从最近检查点继续"),
    "compare": ("Compare loss curves", "对比损失曲线"),
    "no_run": (
        "No run is being watched. Start one, or open one in the Runs tab.",
        "当前未监控任何运行。请开始训练，或在“历史运行”中打开。",
    ),
    "data_intro": (
        "Check the training data as FlagEmbedding will read it, see what the model "
        "will really see, and how long it is in tokens — before a run.",
        "按 FlagEmbedding 的读取方式检查训练数据，预览模型实际看到的文本及其 token 长度。",
    ),
    "data_paths": (
        "Files or folders, one per line (empty: the form's training data)",
        "文件或目录，每行一个（留空则使用表单中的训练数据）",
    ),
    "data_check": ("Check", "检查"),
    "data_stats": ("Statistics", "统计"),
    "data_preview": ("Instruction preview", "指令预览"),
    "data_kinds": ("Problems by kind", "问题类别"),
    "data_problems": ("First problems", "问题示例"),
    "data_files": ("Files", "文件"),
    "data_sample": ("Sample size for large files", "大文件抽样数量"),
    "data_lengths": ("Token lengths", "Token 长度"),
    "data_split": ("Split off an evaluation set", "切分评估集"),
    "data_split_out": ("Output folder", "输出目录"),
    "data_split_n": ("Held-out queries", "评估查询数"),
    "data_convert": ("Convert a BEIR folder to training rows", "将 BEIR 目录转换为训练数据"),
    "data_convert_out": ("Output file", "输出文件"),
    "data_convert_grade": ("Positives: grade at least", "正例最低相关等级"),
    "data_mine": ("Mine hard negatives", "挖掘难负例"),
    "data_mine_out": ("Output file (never the input)", "输出文件（不会覆盖输入）"),
    "data_mine_pool": (
        "Candidate pool file (empty: the data's own passages)",
        "候选池文件（留空则使用数据自身的文档）",
    ),
    "data_mine_lacking": ("Only rows lacking negatives", "仅处理负例不足的行"),
    "eval_intro": (
        "Retrieval quality before and after fine-tuning, computed as pytrec_eval does, "
        "with the training config's pooling, instructions and lengths.",
        "微调前后的检索效果（与 pytrec_eval 一致），使用训练配置的池化、指令与长度。",
    ),
    "eval_data": (
        "Evaluation folder (BEIR or FlagEmbedding layout)",
        "评估数据目录（BEIR 或 FlagEmbedding 格式）",
    ),
    "eval_run": ("Evaluate a run", "评估一次运行"),
    "eval_models": ("Compare two models", "对比两个模型"),
    "eval_baseline": ("Baseline model", "基线模型"),
    "eval_model": ("Fine-tuned model folder", "微调后模型目录"),
    "eval_retriever": (
        "First stage for rerankers (an embedder; empty: the bundled model)",
        "重排序模型的第一阶段检索器（嵌入模型；留空：内置模型）",
    ),
    "eval_table": ("Metrics", "指标"),
    "eval_per_query": ("Largest wins and losses per query", "单查询的最大提升与下降"),
    "studio_section": (
        "Studio settings (the config's studio: section)",
        "Studio 设置（配置的 studio: 部分）",
    ),
    # Past one machine (studio.webui.cluster_panel)
    "cluster": (
        "Past one machine: several nodes, Slurm, SkyPilot",
        "多机：多节点、Slurm、SkyPilot",
    ),
    "cluster_intro": (
        "Export this config as one script per node, a Slurm job or a SkyPilot task, or submit it "
        "to Slurm from here (the run then shows in Runs with Slurm's state and reason).",
        "把当前配置导出为每节点脚本、Slurm 作业或 SkyPilot 任务，或直接提交到 Slurm"
        "（运行会出现在“历史运行”中，显示 Slurm 的状态与原因）。",
    ),
    "cluster_target": ("Export as", "导出为"),
    "cluster_out": ("Folder to write into", "输出目录"),
    "cluster_head": ("Head node address", "主节点地址"),
    "cluster_ifname": ("Network interface (optional)", "网卡名（可选）"),
    "cluster_gpus": ("GPUs per node (0: CPU)", "每节点 GPU 数（0 为 CPU）"),
    "cluster_cpus": ("CPUs per node task", "每节点任务 CPU 数"),
    "cluster_time": ("Time limit (Slurm)", "时间上限（Slurm）"),
    "cluster_partition": ("Partition (Slurm)", "分区（Slurm）"),
    "cluster_account": ("Account (Slurm)", "账户（Slurm）"),
    "cluster_accelerators": (
        "Accelerators (SkyPilot, e.g. A100:8)",
        "加速器（SkyPilot，如 A100:8）",
    ),
    "cluster_export": ("Export", "导出"),
    "cluster_submit": ("Submit to Slurm", "提交到 Slurm"),
    # issue 14: memory estimate, teacher scores, merging
    "memory": ("Memory estimate (per device)", "显存/内存估算（每个设备）"),
    "memory_btn": ("Estimate memory", "估算内存"),
    "data_score": ("Teacher scores for distillation", "为蒸馏添加教师分数"),
    "data_adapt": ("From documents to a better model", "从文档到更好的模型"),
    "data_adapt_intro": (
        "Pairs from your documents, whole documents held out, negatives mined without false "
        "ones, a run scored on the held-out split at every save, merges with the base: the best "
        "by held-out nDCG@10 is exported, and the table says what each scored. Takes as long as "
        "the run.",
        "从文档生成训练对，按文档留出验证集，挖掘去除假负例的负例，训练中每次保存都在留出集上评估，并与基座模型融合："
        "按留出集 nDCG@10 导出最佳模型，表格列出每个候选的分数。耗时与训练相同。",
    ),
    "data_difficulty": ("How hard are the negatives?", "负例难度"),
    "data_pairs": ("Training pairs from documents", "从文档生成训练对"),
    "data_pairs_corpus": (
        "Documents (a BEIR corpus.jsonl or a folder of .txt/.md)",
        "文档（BEIR corpus.jsonl 或 .txt/.md 文件夹）",
    ),
    "data_pairs_out": ("Pairs file (then mine negatives)", "训练对文件（之后挖掘负例）"),
    "data_pairs_method": ("Query from", "查询来源"),
    "data_pairs_llm": (
        "LLM: an OpenAI-compatible endpoint (key from $OPENAI_API_KEY) or a model folder",
        "LLM：OpenAI 兼容接口（密钥取自 $OPENAI_API_KEY）或本地模型文件夹",
    ),
    "data_score_out": ("Scored file (re-run resumes it)", "输出文件（重新运行可续写）"),
    "data_score_model": (
        "Scoring model: a reranker, or an embedder (empty: the form's model)",
        "打分模型：重排模型或向量模型（留空则使用表单中的模型）",
    ),
    "merge": ("Merge with the base (LM-Cocktail)", "与基座模型融合（LM-Cocktail）"),
    "merge_weights": ("Fine-tuned weights, e.g. 0,0.5,1", "微调模型权重，如 0,0.5,1"),
    "merge_general": ("General eval folder (optional)", "通用评估目录（可选）"),
    "merge_out": ("Folder for the mixes", "融合模型输出目录"),
    "merge_export": ("Export the best mix to", "导出最佳融合模型到"),
}


def t(key: str, lang: str = "en") -> str:
    en, zh = TEXT[key]
    return zh if lang == "zh" else en
