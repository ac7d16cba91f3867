"""Shared fixtures: the bundled real model, FlagEmbedding's real example data, small configs.

Everything a test reads is in the repository (tests/data/) or a temp folder; the audit hook
in tests/read_guard.py fails the session when a test opens a file outside them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from studio.core.config import DeepSpeedSettings, StudioConfig, TorchrunSettings

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
SEED_SCRIPT = DATA / "scripts" / "seed_like_training.sh"
FE_EXAMPLES = DATA / "fe_examples"  # FlagEmbedding's examples/finetune/, MIT (LICENSE there)
FE_DATA = FE_EXAMPLES / "embedder" / "example_data"
MSMARCO = FE_DATA / "retrieval" / "msmarco.jsonl"

pytest_plugins = ["read_guard"]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # Two workers on two cores: each test's torch (and the runs it starts) takes one thread;
    # two OpenMP pools of two threads each would spin against each other.
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def web_event(demo, name: str):
    """The event of a built web page whose function has this name (the tabs bind named
    functions): its inputs, and the function a test calls as the page would."""
    found = [f for f in demo.fns.values() if getattr(f.fn, "__name__", "") == name]
    assert found, f"no event handler {name!r} on the page"
    return found[0]


def web_handler(demo, name: str):
    """The function a built web page calls for an event, found by its name."""
    return web_event(demo, name).fn


def tiny_train_config(out_dir: Path | None = None, **overrides) -> StudioConfig:
    """A real but small fine-tune of the bundled model: a few steps on CPU."""
    args = {
        "model_name_or_path": "bundled:all-MiniLM-L6-v2",
        "train_data": [str(MSMARCO)],
        "sentence_pooling_method": "mean",
        "train_group_size": 2,
        "per_device_train_batch_size": 2,
        "query_max_len": 32,
        "passage_max_len": 64,
        "max_steps": 4,
        "logging_steps": 1,
        "save_steps": 2,
        "warmup_ratio": 0.1,
    }
    if out_dir is not None:
        args["output_dir"] = str(out_dir)
    args.update(overrides)
    return StudioConfig(args, TorchrunSettings(), DeepSpeedSettings(stage=0))


@pytest.fixture
def tiny_config():
    return tiny_train_config


@pytest.fixture(autouse=True)
def _restore_environment():
    """HF's TrainingArguments writes ACCELERATE_* variables into os.environ when a test parses
    flags in-process (e.g. `--deepspeed ... --fp16` sets ACCELERATE_USE_DEEPSPEED and the mixed
    precision); without this, every later subprocess run would inherit them."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def faces(tmp_path):
    """The web page and a notebook studio over the same runs folder, each with the quickstart."""
    from studio.core import config as config_mod
    from studio.notebook import Studio
    from studio.webui.app import AppContext, build_app

    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    demo = build_app(
        AppContext(
            runs_dir, ROOT, initial=config_mod.load(ROOT / "example_data" / "quickstart.yaml")
        )
    )
    studio = Studio(ROOT / "example_data" / "quickstart.yaml", runs_dir=runs_dir, base_dir=ROOT)
    yield demo, studio, runs_dir
    studio.close()
