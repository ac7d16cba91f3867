"""The launch command: argv without a shell, and a shell script that survives bash."""

from __future__ import annotations

import shlex
import subprocess

from studio.core import command, deepspeed_config
from studio.core.config import DeepSpeedSettings, StudioConfig, TorchrunSettings

NASTY = '为这个问题生成嵌入表示来检索文章: it\'s "quoted" $HOME `x`'


def _config(**args):
    return StudioConfig(
        {"model_name_or_path": "/models/bge", "train_data": ["a b.jsonl", "c.jsonl"], **args},
        TorchrunSettings(nproc_per_node=2),
        DeepSpeedSettings(stage=0),
    )


def test_flags_render_as_hf_parses_them():
    argv = command.flag_argv(_config(fp16=True, normalize_embeddings=False, learning_rate=1e-5))
    assert argv[argv.index("--train_data") + 1 : argv.index("--train_data") + 3] == [
        "a b.jsonl",
        "c.jsonl",
    ]
    assert "--fp16" in argv and argv[argv.index("--fp16") + 1].startswith("--")
    assert argv[argv.index("--normalize_embeddings") + 1] == "False"
    assert argv[argv.index("--report_to") + 1] == "none"


def test_flags_parse_back_through_flagembeddings_parser(tmp_path, monkeypatch):
    from transformers import HfArgumentParser

    from studio.facts.schema import argument_dataclasses

    monkeypatch.chdir(tmp_path)  # FlagEmbedding checks that the data files exist
    (tmp_path / "a b.jsonl").write_text("")
    (tmp_path / "c.jsonl").write_text("")
    cfg = _config(
        fp16=True,
        normalize_embeddings=False,
        query_instruction_for_retrieval=NASTY,
        mrl_dims=[64, 128],
        output_dir="/tmp/out",
    )
    ds = tmp_path / "ds.json"
    ds.write_text(deepspeed_config.dumps(deepspeed_config.generate(DeepSpeedSettings())))
    argv = command.flag_argv(cfg, ds_path=str(ds))
    model, data, training = HfArgumentParser(argument_dataclasses()).parse_args_into_dataclasses(
        argv
    )
    assert data.train_data == ["a b.jsonl", "c.jsonl"]
    assert data.query_instruction_for_retrieval == NASTY
    assert training.fp16 is True and training.normalize_embeddings is False
    assert training.mrl_dims == [64, 128] and training.report_to == []
    assert training.deepspeed == str(ds)


def test_script_is_one_flag_a_line_and_bash_reads_the_same_argv(tmp_path):
    cfg = _config(query_instruction_for_retrieval=NASTY, fp16=True)
    script = command.render_script(cfg)
    body = script.split('pwd)"\n', 1)[1]
    lines = body.strip().splitlines()
    assert all(line.endswith(" \\") for line in lines[:-1]) and not lines[-1].endswith("\\")
    flags = [a for a in command.flag_argv(cfg, "x") if a.startswith("--")]
    assert [line.split()[0] for line in lines[2:]] == flags
    # Replace the launcher by printf to see exactly what bash would pass.
    probe = tmp_path / "probe.sh"
    probe.write_text(script.replace("torchrun ", "printf '%s\\n' torchrun ", 1))
    out = subprocess.run(["bash", str(probe)], capture_output=True, text=True, check=True).stdout
    words = out.splitlines()
    assert words[words.index("--query_instruction_for_retrieval") + 1] == NASTY
    assert words[words.index("--deepspeed") + 1] == f"{tmp_path}/ds_config.json"
    assert words[words.index("-m") + 1] == "FlagEmbedding.finetune.embedder.encoder_only.base"


def test_launch_argv_uses_this_python_and_the_studio_entry():
    argv = command.launch_argv(_config(), "/venv/bin/python", "/run/ds.json", master_port=1234)
    assert argv[:3] == ["/venv/bin/python", "-m", "torch.distributed.run"]
    assert argv[argv.index("--master_port") + 1] == "1234"
    assert argv[argv.index("-m", 3) + 1] == "studio.training.worker"
    assert argv[argv.index("--deepspeed") + 1] == "/run/ds.json"
    assert argv[argv.index("--nproc_per_node") + 1] == "2"
    # handed to Popen as a list: every item a plain str, nothing for a shell to interpret
    assert all(type(a) is str for a in argv)
    assert shlex.split(shlex.join(argv)) == argv
