"""LM-Cocktail merging on the real bundled model: three weights give three evaluated mixes.

The "fine-tuned" model is a copy of the bundled all-MiniLM-L6-v2 whose weights are perturbed
with seeded noise (cheaper than a fine-tune, and far enough from the base that the mixes
score differently). The eval set is a small slice of example_data/eval.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from studio.core.config import bundled_model_path
from studio.evaluation import merge

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT / "example_data" / "eval"


def small_eval(dest: Path, n_queries: int = 20, n_docs: int = 200) -> Path:
    """The first queries of the example eval set, their relevant docs and some others."""
    lines = (EVAL / "qrels" / "test.tsv").read_text().splitlines()
    header, rows = lines[0], [line.split("\t") for line in lines[1:] if line.strip()]
    queries = list(dict.fromkeys(r[0] for r in rows))[:n_queries]
    kept_rows = [r for r in rows if r[0] in queries]
    relevant = {r[1] for r in kept_rows}
    corpus = [json.loads(x) for x in (EVAL / "corpus.jsonl").read_text().splitlines() if x]
    docs = [d for d in corpus if str(d["_id"]) in relevant]
    docs += [d for d in corpus if str(d["_id"]) not in relevant][: n_docs - len(docs)]
    (dest / "qrels").mkdir(parents=True)
    (dest / "qrels" / "test.tsv").write_text(
        "\n".join([header, *("\t".join(r) for r in kept_rows)]) + "\n"
    )
    (dest / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    qs = [json.loads(x) for x in (EVAL / "queries.jsonl").read_text().splitlines() if x]
    (dest / "queries.jsonl").write_text(
        "".join(json.dumps(q) + "\n" for q in qs if str(q["_id"]) in queries)
    )
    return dest


def perturbed_copy(dest: Path, scale: float = 0.5) -> Path:
    """The bundled model with every float weight moved by seeded noise (a stand-in fine-tune)."""
    import torch
    from transformers import AutoModel

    base = bundled_model_path()
    shutil.copytree(base, dest)
    model = AutoModel.from_pretrained(str(base))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            noise = torch.randn(param.shape, generator=generator)
            param.add_(noise * param.std().clamp_min(1e-3) * scale)
    model.save_pretrained(str(dest))
    return dest


def weights_of(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def test_merge_three_weights_gives_three_evaluated_mixes(tmp_path):
    data = small_eval(tmp_path / "eval")
    general = small_eval(tmp_path / "general", n_queries=5, n_docs=60)
    tuned = perturbed_copy(tmp_path / "tuned")
    out_json = tmp_path / "merge.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "studio",
            "merge",
            "--base",
            "bundled:all-MiniLM-L6-v2",
            "--model",
            str(tuned),
            "--weights",
            "0,0.5,1",
            "--data",
            str(data),
            "--general",
            str(general),
            "--out",
            str(tmp_path / "mixes"),
            "--json",
            str(out_json),
            "--export",
            str(tmp_path / "chosen"),
            "--pick",
            "0.5",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out_json.read_text())
    assert report["method"] == "lm-cocktail mix_models"
    assert [m["weight"] for m in report["mixes"]] == [0.0, 0.5, 1.0]
    for mix in report["mixes"]:
        assert 0.0 <= mix["metrics"]["ndcg_at_10"] <= 1.0
        assert 0.0 <= mix["general"]["ndcg_at_10"] <= 1.0
    scores = [m["metrics"]["ndcg_at_10"] for m in report["mixes"]]
    assert scores[0] != scores[2], "the perturbed model should score differently from the base"
    assert "w=0.50" in result.stdout and "Best held-out" in result.stdout

    base_w, tuned_w = weights_of(bundled_model_path()), weights_of(tuned)
    zero, half, one = (Path(m["path"]) for m in report["mixes"])
    mixed0, mixed1, mixed_half = weights_of(zero), weights_of(one), weights_of(half)
    for key, value in tuned_w.items():
        assert mixed1[key].equal(value), key  # weight 1.0 is the fine-tuned model exactly
        assert mixed0[key].equal(base_w[key]), key  # weight 0.0 is the base exactly
        if value.is_floating_point():
            expected = 0.5 * value + 0.5 * base_w[key]
            assert (mixed_half[key] - expected).abs().max() < 1e-6, key
    # the mix loads in sentence-transformers with the fine-tuned model's pooling, and exports
    st_pooling = json.loads((one / "1_Pooling" / "config.json").read_text())
    assert st_pooling["pooling_mode_mean_tokens"] is True
    assert weights_of(tmp_path / "chosen")["embeddings.word_embeddings.weight"].equal(
        mixed_half["embeddings.word_embeddings.weight"]
    )


def test_merge_refuses_to_overwrite_and_bad_weights(tmp_path):
    (tmp_path / "mixes" / "mix-0.50").mkdir(parents=True)
    with pytest.raises(FileExistsError, match="mix-0.50"):
        merge.sweep(
            "bundled:all-MiniLM-L6-v2",
            "bundled:all-MiniLM-L6-v2",
            [0.5],
            EVAL,
            tmp_path / "mixes",
        )
    with pytest.raises(ValueError, match="outside 0..1"):
        merge.parse_weights("0,1.5")
    with pytest.raises(ValueError, match="not a number"):
        merge.parse_weights("0,half")
