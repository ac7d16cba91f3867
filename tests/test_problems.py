"""One "unknown name, did you mean" for every place a name can be mistyped (issue 11)."""

from __future__ import annotations

from studio.checks.script_import import import_script
from studio.core import config
from studio.facts.problems import unknown_name


def test_unknown_name_suggests_the_closest_else_lists_the_choices():
    typo = unknown_name("learnig_rate", ["learning_rate", "warmup_ratio"], "unknown key.")
    assert typo.fix == "Did you mean `learning_rate`?" and typo.level == "error"
    nothing = unknown_name("zzz", ["stage", "precision"], "unknown key.")
    assert nothing.fix == "Use one of stage, precision."


def test_every_face_of_a_typo_gets_the_same_suggestion():
    text = (
        "model_name_or_path: bundled:all-MiniLM-L6-v2\n"
        "learnig_rate: 1.0e-5\n"
        "torchrun: {nproc_per_nod: 1}\n"
        "deepspeed: {stag: 0}\n"
        "studio: {evaluate_at_ends: true}\n"
        "module: reranker.encoder_only.bas\n"
    )
    _, problems = config.parse_text(text, "typo.yaml")
    fixes = {p.field: p.fix for p in problems}
    assert fixes["torchrun.nproc_per_nod"] == "Did you mean `nproc_per_node`?"
    assert fixes["deepspeed.stag"] == "Did you mean `stage`?"
    assert fixes["studio.evaluate_at_ends"] == "Did you mean `evaluate_at_end`?"
    assert fixes["module"] == "Did you mean `reranker.encoder_only.base`?"

    script = "torchrun -m FlagEmbedding.finetune.embedder.encoder_only.base --learnig_rate 1e-5\n"
    flag = next(p for p in import_script(script).problems if p.code == "unknown_flag")
    assert flag.fix == "Did you mean `--learning_rate`?" and flag.line == 1
