"""Every FlagEmbedding fine-tune module, for real on CPU: example script -> check -> run -> eval.

For each of the six modules beyond the base embedder, FlagEmbedding's own example script
(``tests/data/fe_examples/``, copied unchanged from its repository) is imported into a studio
config, pointed at local models and the repository's example data, made small (4 steps, lengths
16/32, group size 2, batch 2), checked by the pre-flight, and run through the run manager
(torchrun + FlagEmbedding + the studio's entry point, no DeepSpeed: DeepSpeed runs are covered by
test_runs.py and test_faults.py, and cost minutes each on a 2-core CPU). Then ``python -m studio eval --run RUN --json`` must report that module's scores, and
the model must load where its users load it.

Models: M3 and the encoder reranker start from the bundled all-MiniLM-L6-v2 (FlagEmbedding adds
the ColBERT/sparse heads and the classification head). M3 gets a copy whose tokenizer names
``[SEP]`` its EOS token: FlagEmbedding 1.4.2's M3 zeroes the EOS token's sparse weight and fails
on a BERT tokenizer that has none. The decoder embedders and both decoder rerankers start from a
2-layer causal LM built here from a config (``tests/tiny_llm.py``) with LoRA through peft: these
are *pipeline* tests (the path works end to end), not quality tests; the quality of M3's modes on
example_data is in ``bench/bench_m3_modes.py``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from studio.checks import preflight
from studio.checks.script_import import import_script
from studio.cli import commands as cli
from studio.core.config import TorchrunSettings, bundled_model_path
from studio.evaluation import modes
from studio.facts import modules as finetune
from studio.facts.problems import errors
from studio.training import runs
from studio.training.runlog import read_metrics, step_records

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "tests" / "data" / "fe_examples"
EVAL = ROOT / "tests" / "data" / "eval_tiny"
TRAIN = ROOT / "example_data" / "train.jsonl"
TIMEOUT_S = 900
SCRIPTS = {
    finetune.M3: "embedder/encoder_only/m3.sh",
    finetune.DECODER_EMBEDDER: "embedder/decoder_only/base.sh",
    finetune.ICL: "embedder/decoder_only/icl_same_dataset.sh",
    finetune.RERANKER: "reranker/encoder_only/base.sh",
    finetune.DECODER_RERANKER: "reranker/decoder_only/base.sh",
    finetune.LAYERWISE: "reranker/decoder_only/layerwise.sh",
}
SMALL = {
    "query_max_len": 16,
    "passage_max_len": 32,
    "train_group_size": 2,
    "per_device_train_batch_size": 2,
    "max_steps": 4,
    "logging_steps": 1,
    "save_steps": 1000,
    "seed": 1,
}
# What a CPU and this data need instead of the scripts' GPU settings; nothing else is changed.
CPU = {
    "fp16": None,
    "bf16": None,
    "gradient_checkpointing": None,
    "use_flash_attn": None,
    "cache_dir": None,
    "cache_path": None,
    "output_dir": None,
    "overwrite_output_dir": None,
    "knowledge_distillation": False,  # example_data has no teacher scores
}


def _base_models(root: Path) -> dict[str, Path]:
    sys.path.insert(0, str(ROOT / "tests"))
    import tiny_llm

    mini = bundled_model_path()
    m3_base = root / "minilm-eos"
    shutil.copytree(mini, m3_base)
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        data = json.loads((m3_base / name).read_text())
        data["eos_token"] = "[SEP]"
        (m3_base / name).write_text(json.dumps(data))
    llama = tiny_llm.build_llama(root / "tiny-llama")
    layerwise = tiny_llm.build_layerwise(root / "tiny-layerwise")
    return {
        finetune.M3: m3_base,
        finetune.RERANKER: mini,
        finetune.DECODER_EMBEDDER: llama,
        finetune.ICL: llama,
        finetune.DECODER_RERANKER: llama,
        finetune.LAYERWISE: layerwise,
    }


def imported_config(module: str, base_model: Path):
    """The example script imported as is, then made small and CPU-ready (the only edits)."""
    script = EXAMPLES / SCRIPTS[module]
    result = import_script(script.read_text(encoding="utf-8"), script.parent, file=str(script))
    assert result.config.module == module, result.problems
    config = result.config.with_args(
        **CPU,
        **SMALL,
        model_name_or_path=str(base_model),
        train_data=[str(TRAIN)],
    )
    if module in modes.DECODER:
        config = config.with_args(lora_rank=4, lora_alpha=8)
    if module in (finetune.DECODER_EMBEDDER, finetune.ICL):
        # FlagEmbedding 1.4.2's save_merged_model cannot merge a run that added special tokens
        # (torch.load of embedding/emb.pth under torch>=2.6, then an unbound `tokenizer`): the
        # run would fail after training. The studio merges such adapters itself for evaluation.
        config = config.with_args(save_merged_lora_model=False)
    if module in (finetune.RERANKER, finetune.DECODER_RERANKER, finetune.LAYERWISE):
        config = config.with_args(max_len=48)
    if module == finetune.ICL:
        config = config.with_args(example_query_max_len=16, example_passage_max_len=16)
    if module == finetune.LAYERWISE:
        config = config.with_args(start_layer=1)
    return config.__class__(
        config.args,
        TorchrunSettings(nproc_per_node=1),
        None,
        {"evaluate_at_end": True, "eval_data": str(EVAL), "rerank_top_k": 10},
        module,
    )


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("modes")
    saved = os.environ.get("BGE_STUDIO_CACHE")
    os.environ["BGE_STUDIO_CACHE"] = str(root / "cache")
    yield root, _base_models(root / "models")
    if saved is None:
        os.environ.pop("BGE_STUDIO_CACHE", None)
    else:
        os.environ["BGE_STUDIO_CACHE"] = saved


@pytest.fixture(scope="module", params=list(SCRIPTS), ids=lambda m: m.replace(".", "-"))
def finished(request, workspace):
    """One real 4-step run per module, shared by the tests below: (module, run_dir, eval)."""
    module = request.param
    root, bases = workspace
    config = imported_config(module, bases[module])
    problems = preflight.run_checks(config, ROOT)
    assert not errors(problems), [str(p) for p in errors(problems)]
    run_dir = runs.start(config, root / "runs", ROOT)
    status = runs.wait(run_dir, TIMEOUT_S)
    log = (run_dir / "train.log").read_text(errors="replace")
    assert status["state"] == "succeeded", log[-4000:]
    out = root / f"{module}.eval.json"
    # `python -m studio eval --run RUN --k 1,10 --json OUT`, in this process (the CLI's own
    # main; a new interpreter would only add its imports to each module's minute)
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = cli.main(["eval", "--run", str(run_dir), "--k", "1,10", "--json", str(out)])
    assert code == 0, stdout.getvalue()[-3000:]
    return module, run_dir, json.loads(out.read_text()), stdout.getvalue()


def test_run_logged_at_least_four_steps(finished):
    module, run_dir, _, _ = finished
    steps = step_records(read_metrics(run_dir / "metrics.jsonl"))
    assert len(steps) >= 4, steps
    assert all(np.isfinite(s["loss"]) for s in steps)
    status = json.loads((run_dir / "status.json").read_text())
    assert not status.get("eval_error") and not status.get("export_error"), status


def test_eval_json_has_the_module_scores(finished):
    module, run_dir, report, stdout = finished
    kind = modes.kind_of(module)
    assert report["module"] == module and report["kind"] == kind
    assert list(report["modes"]) == list(modes.MODE_NAMES[kind])
    for name, block in report["modes"].items():
        assert set(block["models"]) >= {"base", "final"}, name
        for label in ("base", "final"):
            value = block["models"][label]["ndcg_at_10"]
            assert 0.0 <= value <= 1.0, (name, label, value)
        assert name in stdout
    if kind == "reranker":
        assert report["top_k"] == 10 and Path(report["retriever"]) == bundled_model_path()
        first = report["modes"]["first_stage"]["models"]
        assert first["base"]["ndcg_at_10"] == first["final"]["ndcg_at_10"]
    if module == finetune.RERANKER:
        # the bundled base has no classifier head: scored with the seeded head the fine-tune
        # started from, and said; the fine-tuned model's own head is used as is
        assert list(report["untrained_head"]) == ["base"]
        assert any("no trained classifier head" in w for w in report["warnings"])
    # the run's own post-training step wrote the same kind of report
    own = json.loads((run_dir / "eval.json").read_text())
    assert list(own["modes"]) == list(report["modes"])


def test_model_loads_where_users_load_it(finished):
    """The exported model (card included) loads in the module's FlagEmbedding class, and the
    scores it gives equal the evaluation's."""
    module, run_dir, report, _ = finished
    model_dir = run_dir / "model"
    card = (model_dir / "README.md").read_text()
    assert module in card and "## Evaluation" in card
    pair = [["how do I split a path", "os.path.split(p): Split a pathname."]]
    if module == finetune.M3:
        from FlagEmbedding import BGEM3FlagModel

        model = BGEM3FlagModel(str(model_dir), use_fp16=False, devices="cpu", pooling_method="cls")
        out = model.encode(["split a path"], return_sparse=True, return_colbert_vecs=True)
        assert out["dense_vecs"].shape[1] == 384 and out["colbert_vecs"][0].shape[1] == 384
        assert "BGEM3FlagModel(" in card
    elif module == finetune.RERANKER:
        from FlagEmbedding import FlagReranker
        from sentence_transformers import CrossEncoder

        fe = FlagReranker(str(model_dir), use_fp16=False, devices="cpu").compute_score(pair)
        st = CrossEncoder(str(model_dir), device="cpu").predict([tuple(pair[0])])
        np.testing.assert_allclose(np.asarray(st).reshape(-1), np.asarray(fe), atol=1e-5)
    elif module in (finetune.DECODER_RERANKER, finetune.LAYERWISE):
        from FlagEmbedding import FlagLLMReranker, LayerWiseFlagLLMReranker

        cls = LayerWiseFlagLLMReranker if module == finetune.LAYERWISE else FlagLLMReranker
        config = runs.load_run_config(run_dir)
        extra = {"cutoff_layers": [2]} if module == finetune.LAYERWISE else {}
        merged = model_dir / "merged_model"
        target = merged if merged.is_dir() else Path(config.args["model_name_or_path"])
        peft = {} if merged.is_dir() else {"peft_path": str(model_dir)}
        reranker = cls(str(target), use_fp16=False, devices="cpu", trust_remote_code=True, **peft)
        reranker.model.config.use_cache = False  # as the card says (FlagEmbedding 1.4.2 + tf 4.57)
        score = reranker.compute_score(pair, **extra)
        assert np.isfinite(np.asarray(score, dtype=float)).all()
        name = "LayerWiseFlagLLMReranker" if module == finetune.LAYERWISE else "FlagLLMReranker"
        assert f"{name}(" in card  # the names users import (aliases of FlagEmbedding's classes)
    else:
        assert ("FlagICLModel(" if module == finetune.ICL else "FlagLLMModel(") in card


@pytest.mark.parametrize("module", list(SCRIPTS), ids=lambda m: m.replace(".", "-"))
def test_command_sh_runs_with_flagembedding_alone(module, workspace, tmp_path):
    """Each module's command.sh trains with FlagEmbedding's own module and no studio on the path."""
    root, bases = workspace
    config = imported_config(module, bases[module])
    run_dir = runs.prepare(config, root / "scripts", ROOT)
    out = tmp_path / "alone"
    script = (run_dir / "command.sh").read_text()
    script = script.replace(str(run_dir / "model"), str(out))
    (run_dir / "command.sh").write_text(script)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    proc = subprocess.run(
        ["bash", str(run_dir / "command.sh")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert script.split("-m ", 1)[1].split()[0] == f"FlagEmbedding.finetune.{module}"
    weights = ("model.safetensors", "adapter_model.safetensors")
    assert any((out / name).is_file() for name in weights), sorted(p.name for p in out.iterdir())
