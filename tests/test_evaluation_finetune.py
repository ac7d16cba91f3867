"""A short real fine-tune must raise nDCG@10 on held-out data, and export a model that loads right.

The run goes through the run manager exactly as a user's does (torchrun + DeepSpeed ZeRO-0 +
FlagEmbedding on CPU, the bundled all-MiniLM-L6-v2, example_data/train.jsonl), then
the run's own post-training step (``studio: {evaluate_at_end: true}``) scores base and final
model on example_data/eval, whose queries and
positives never appear in the training data (checked: no eval query or eval positive occurs in
train.jsonl). With the settings below (20 steps of batch 8, one hard negative, lr 5e-5) the base
model's nDCG@10 of 0.7422 rose on six seeds to 0.8479, 0.8320, 0.8507, 0.8362, 0.8591 and 0.8456
(seeds 1, 2, 3, 4, 5, 42: gains +0.090 to +0.117); the margin asserted, +0.05, is about half the
smallest gain seen. The run is deterministic for a seed on this CPU stack.

The same step exports the final model for sentence-transformers (with a model card holding the
metrics); loaded there it must give the studio encoder's embeddings.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from studio.core.config import DeepSpeedSettings, StudioConfig, TorchrunSettings
from studio.evaluation.data import load_eval_data
from studio.evaluation.encoder import Encoder
from studio.evaluation.settings import settings_from_config
from studio.training import runs
from studio.training.run_eval import read_run_eval

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT / "example_data" / "eval"
TRAIN = ROOT / "example_data" / "train.jsonl"
TIMEOUT_S = 1800
MARGIN = 0.05
FINETUNE_ARGS = {
    "model_name_or_path": "bundled:all-MiniLM-L6-v2",
    "train_data": [str(TRAIN)],
    "sentence_pooling_method": "mean",
    "normalize_embeddings": True,
    "train_group_size": 2,
    "per_device_train_batch_size": 8,
    "query_max_len": 32,
    "passage_max_len": 96,
    "learning_rate": 5e-5,
    "temperature": 0.05,
    "max_steps": 20,
    "warmup_ratio": 0.1,
    "logging_steps": 1,
    "save_steps": 1000,
    "seed": 1,
}


def test_short_finetune_raises_ndcg_at_10_on_held_out_data(tmp_path, monkeypatch):
    assert (EVAL / "corpus.jsonl").is_file() and TRAIN.is_file(), "example_data is committed"
    monkeypatch.setenv("BGE_STUDIO_CACHE", str(tmp_path / "cache"))
    config = StudioConfig(
        dict(FINETUNE_ARGS),
        TorchrunSettings(),
        DeepSpeedSettings(stage=0),
        {"evaluate_at_end": True, "eval_data": str(EVAL)},
    )
    run_dir = runs.start(config, tmp_path / "runs", ROOT)
    status = runs.wait(run_dir, TIMEOUT_S)
    assert status["state"] == "succeeded", (run_dir / "train.log").read_text()[-3000:]

    # evaluate_at_end: the run's post-training step wrote eval.json and exported the model
    assert not status.get("eval_error") and not status.get("export_error"), status
    report = read_run_eval(run_dir)
    assert report is not None, (run_dir / "train.log").read_text()[-3000:]
    before = report["models"]["base"]["ndcg_at_10"]
    after = report["models"]["final"]["ndcg_at_10"]
    print(f"nDCG@10 base {before:.4f} -> fine-tuned {after:.4f} ({after - before:+.4f})")
    assert report["settings"]["pooling"] == "mean" and report["settings"]["passage_max_len"] == 96
    assert report["models"]["final"]["step"] == FINETUNE_ARGS["max_steps"]
    assert after >= before + MARGIN, f"nDCG@10 {before:.4f} -> {after:.4f}"

    # the exported folder loads in sentence-transformers with the training pooling/normalization
    from sentence_transformers import SentenceTransformer

    model_dir = run_dir / "model"
    run_config = runs.load_run_config(run_dir)
    card = (model_dir / "README.md").read_text()
    assert f"{before:.4f}" in card and f"{after:.4f}" in card and "nDCG@10" in card
    settings = settings_from_config(run_config)
    data = load_eval_data(EVAL)
    texts = data.corpus_texts[:24] + data.query_texts[:8]
    ours = Encoder(model_dir, settings.pooling, settings.normalize).encode(
        texts, settings.passage_max_len
    )
    st = SentenceTransformer(str(model_dir), device="cpu")
    assert st.max_seq_length == settings.passage_max_len
    np.testing.assert_allclose(st.encode(texts, convert_to_numpy=True), ours, atol=1e-5)
