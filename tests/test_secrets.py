"""No secret in any file of a run, the log tail, or notebook output.

FlagEmbedding's `token` flag defaults to `HF_TOKEN` and its runner logs the model arguments,
so the end-to-end test runs a real (short, CPU) fine-tune with a random fake `HF_TOKEN` and
searches every byte of every file of the run folder for it.
"""

from __future__ import annotations

import os
import secrets as stdlib_secrets

import pytest
from conftest import MSMARCO, ROOT, tiny_train_config

from studio.facts.secrets import MASK, clear_token_fields, redact, secret_values
from studio.training import runs
from studio.training.runlog import tail_lines
from studio.training.train_entry import parse_args

TOKEN = "hf_" + stdlib_secrets.token_hex(16)  # random: it can only appear if it leaked


def test_flagembedding_reads_hf_token_and_protect_run_clears_it(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    argv = [
        "--model_name_or_path",
        "m",
        "--train_data",
        str(MSMARCO),
        "--output_dir",
        str(tmp_path),
    ]
    model_args, _, training_args = parse_args(argv)
    assert model_args.token == TOKEN  # what FlagEmbedding's runner would log
    assert TOKEN in repr(model_args)
    assert clear_token_fields(model_args, training_args) == ["token"]
    assert model_args.token is None and TOKEN not in repr(model_args)
    assert os.environ["HF_TOKEN"] == TOKEN  # the hub client still finds it


def test_a_token_flag_moves_into_the_environment(tmp_path):
    class Args:
        token = "hf_given_on_the_command_line"
        hub_token = None

    environ = {"HF_TOKEN": "hf_other_value"}
    args = Args()
    assert clear_token_fields(args, environ=environ) == ["token"]
    assert args.token is None and environ["HF_TOKEN"] == "hf_given_on_the_command_line"


def test_redact_masks_env_secrets_and_the_password_of_a_login():
    environ = {"HF_TOKEN": TOKEN, "BGE_STUDIO_AUTH": "alice:s3cret-pass", "OTHER": "visible"}
    found = secret_values(environ)
    assert TOKEN in found and "s3cret-pass" in found and "visible" not in found
    assert redact(f"token={TOKEN} pw=s3cret-pass", found) == f"token={MASK} pw={MASK}"


@pytest.fixture(scope="module")
def run_with_token(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_TOKEN", TOKEN)  # as a user with a token in their shell starts the studio
        runs_dir = tmp_path_factory.mktemp("runs")
        config = tiny_train_config(max_steps=2, save_steps=1)
        config.deepspeed = None  # the token path does not involve DeepSpeed; keep the run short
        run_dir = runs.start(config, runs_dir, ROOT)
        status = runs.wait(run_dir, 600)
    assert status["state"] == "succeeded", (run_dir / "train.log").read_text()[-3000:]
    return run_dir


@pytest.mark.slow
def test_no_file_of_the_run_holds_the_token(run_with_token):
    files = [p for p in run_with_token.rglob("*") if p.is_file()]
    assert len(files) > 10 and any(p.name == "training_args.bin" for p in files)
    leaks = [str(p) for p in files if TOKEN.encode() in p.read_bytes()]
    assert leaks == []
    log = (run_with_token / "train.log").read_text()
    # the line that used to carry the token was written, without it
    assert "Model parameters" in log and "token=None" in log


@pytest.mark.slow
def test_log_tail_and_notebook_output_hold_no_token(run_with_token, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert "Model parameters" in tail_lines(run_with_token / "train.log", 100_000)
    assert TOKEN not in tail_lines(run_with_token / "train.log", 100_000)
    from studio.notebook import Studio

    studio = Studio(runs_dir=run_with_token.parent)
    shown = studio.open_run(run_with_token.name)
    text = shown["summary"] + shown["config"] + shown["log"] + shown["figure"].to_json()
    assert TOKEN not in text and run_with_token.name in text
