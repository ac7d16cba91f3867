"""The action layer under both faces (studio.actions + studio.views), and the places where the
web UI and the notebook used to disagree: each is checked here through the action and through
both faces, which must now show the same words.

The web page is built for real (``build_app``) and its event handlers are called as Gradio
calls them: one dict keyed by the page's own components, from the registry's ids.
"""

from __future__ import annotations

import json
import time

import pytest
from conftest import ROOT, web_event, web_handler

from studio.app import actions, views
from studio.core import config as config_mod
from studio.core.config import StudioConfig
from studio.facts.problems import ERROR, WARNING, Problem
from studio.facts.runfolder import RunFolder

QUICKSTART = ROOT / "example_data" / "quickstart.yaml"
REPORT = {
    "models": {
        "base": {"ndcg_at_10": 0.5, "recall_at_10": 0.6, "mrr_at_10": 0.4},
        "final": {"ndcg_at_10": 0.55, "recall_at_10": 0.7, "mrr_at_10": 0.45},
    },
    "delta": {"ndcg_at_10": 0.05},
}


def make_run(runs_dir, name, status, steps=3, report=None):
    """A run folder as a run leaves it (status, config, metrics, log, eval.json)."""
    folder = RunFolder(runs_dir / name)
    folder.path.mkdir(parents=True)
    folder.config.write_text(config_mod.dump(config_mod.load(QUICKSTART)), encoding="utf-8")
    now = time.time()
    lines = [{"event": "train_begin", "max_steps": steps, "global_step": 0, "time": now}]
    lines += [
        {"step": s, "loss": 1.0 / s, "elapsed_s": s, "max_steps": steps, "time": now + s}
        for s in range(1, steps + 1)
    ]
    folder.metrics.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    folder.log.write_text("step 1\nstep 2\nstep 3\n", encoding="utf-8")
    folder.status.write_text(json.dumps({"started_at": now, **status}), encoding="utf-8")
    if report is not None:
        folder.eval.write_text(json.dumps(report), encoding="utf-8")
    return folder.path


def page_call(demo, name, **by_id):
    """Call the page's handler `name` with its inputs as the page holds them, some changed by
    id; returns its outputs by id (a single output under the key None)."""
    fn = web_event(demo, name)
    reg = demo.registry
    data = {c: c.value for c in fn.inputs}
    for cid, value in by_id.items():
        data[reg[cid.replace("__", ".")]] = value
    out = fn.fn(data) if fn.inputs_as_dict else fn.fn(*data.values())
    if not isinstance(out, dict):
        return {None: out}
    ids = {id(c): cid for cid, c in reg.components.items()}
    return {ids[id(c)]: v for c, v in out.items()}


def same_words(web_markdown: str, notebook_html: str) -> str:
    """Both faces' texts as a reader sees them; asserts they are the same and returns it."""
    web = views.plain(views.to_html(web_markdown))
    notebook = views.plain(notebook_html)
    assert web == notebook, (web, notebook)
    return web


# ---------------------------------------------------------------------------- status line


def test_status_line_reads_the_same_and_names_the_exit_code_of_a_failure_only(tmp_path, faces):
    """Was: the web showed any non-zero exit code (a stopped run's -15 too), the notebook only
    a failure's, and only the web showed Slurm's reason."""
    from studio.notebook.render import status_html

    demo, studio, runs_dir = faces
    failed = {"state": "failed", "exit_code": 1, "error": "boom", "log_tail": "a\nb"}
    stopped = {"state": "stopped", "exit_code": -15}
    queued = {"state": "queued", "reason": "Resources", "job_id": "7"}
    texts = {}
    for name, status in {"f": failed, "s": stopped, "q": queued}.items():
        texts[name] = same_words(
            views.status_text(tmp_path / name, status), status_html(tmp_path / name, status)
        )
    assert "(exit code 1)" in texts["f"] and "boom" in texts["f"] and "Last lines" in texts["f"]
    assert "exit code" not in texts["s"] and "stopped" in texts["s"]
    assert "queued (Resources)" in texts["q"]


def test_a_failed_evaluation_after_training_shows_in_every_face(tmp_path, faces):
    """Was: only in status.json; the status line said "succeeded" and nothing else."""
    from studio.notebook.render import status_html

    status = {"state": "succeeded", "eval_error": "EvalDataError: no qrels here."}
    text = same_words(
        views.status_text(tmp_path / "r", status), status_html(tmp_path / "r", status)
    )
    assert "the evaluation after training failed: EvalDataError: no qrels here." in text
    assert f"studio eval --run {tmp_path / 'r'}" in text
    fine = same_words(
        views.status_text(tmp_path / "r", {"state": "succeeded"}),
        status_html(tmp_path / "r", {"state": "succeeded"}),
    )
    assert "failed" not in fine


# ---------------------------------------------------------------------------- run summary


def test_run_summary_is_one_text_with_the_evaluation_table(faces):
    """Was: the web built its own table of four metrics, the notebook used comparison_table."""
    demo, studio, runs_dir = faces
    make_run(runs_dir, "done", {"state": "succeeded", "exit_code": 0}, report=REPORT)
    view = actions.open_run(actions.Workspace(runs_dir, ROOT), "done")
    assert view.series.last_step == 3 and "model_name_or_path" in view.config_text
    web = page_call(demo, "open_run", runs__pick="done")
    text = same_words(web["runs.summary"], studio.open_run("done")["summary"])
    assert text.startswith("✅ done — succeeded")
    assert "Evaluation" in text and "nDCG@10" in text and "delta" in text
    assert "0.5000" in text and "0.5500" in text and "0.0500" in text


def test_steps_the_fp16_loss_scaler_skipped_show_in_every_face(faces, capsys):
    """A skipped step is counted in the summary (web, notebook, CLI) and marked on the loss
    chart, so a healthy fp16 run does not read as a failing one (issue 18)."""
    from studio.cli import commands as cli
    from studio.training import loss_health

    demo, studio, runs_dir = faces
    run = make_run(runs_dir, "fp16", {"state": "succeeded", "exit_code": 0}, steps=3)
    health = loss_health.LossHealth(findings_path=RunFolder(run).path / loss_health.HEALTH_FILE)
    health.step_end(None, 2, skipped=True, scale=32768.0, scaler=loss_health.AMP_SCALER)
    with RunFolder(run).metrics.open("a") as fh:
        fh.write(json.dumps({"event": loss_health.SKIP_EVENT, "step": 2}) + "\n")
    web = page_call(demo, "open_run", runs__pick="fp16")
    notebook = studio.open_run("fp16")
    text = same_words(web["runs.summary"], notebook["summary"])
    said = (
        "1 step skipped by the fp16 loss scaler (torch's GradScaler under HF's fp16 AMP): step 2."
    )
    assert said in text
    for figure in (web["runs.plot"], notebook["figure"]):
        (mark,) = [t for t in figure.data if t.name and "loss scaler" in t.name]
        assert list(mark.x) == [2] and list(mark.y) == [0.5]  # on the loss curve at step 2
    cli._print_health(run)  # what `studio train` and `studio resume --wait` print at the end
    assert f"note: {said}" in capsys.readouterr().err


def test_an_unreadable_eval_json_is_said_not_hidden(faces):
    demo, studio, runs_dir = faces
    run = make_run(runs_dir, "odd", {"state": "succeeded"})
    RunFolder(run).eval.write_text("{not json", encoding="utf-8")
    web = page_call(demo, "open_run", runs__pick="odd")
    assert "eval.json is not readable" in same_words(
        web["runs.summary"], studio.open_run("odd")["summary"]
    )


# ---------------------------------------------------------------------------- problems


def test_problems_read_the_same_in_both_faces(faces):
    """Was: four renderers (web Markdown, notebook HTML, two hand-made tables)."""
    from studio.notebook.render import problems_html

    demo, studio, _ = faces
    problems = [
        Problem(ERROR, "bad value for `save_steps`: 1.5.", "Type a whole number.", "save_steps"),
        Problem(WARNING, "a * star and <b>tag</b>", file="run.sh", line=3),
    ]
    text = same_words(views.problems_text(problems), problems_html(problems))
    assert "bad value for save_steps : 1.5. — Type a whole number." in text  # `x`: code
    assert "❌ error save_steps" in text and "⚠️ warning run.sh:3" in text
    assert "a * star and <b>tag</b>" in text  # shown, not rendered
    assert views.problem_rows(problems[1:])[0][:3] == ["warning", "run.sh", 3]
    # The pre-flight of the same form, as each face shows it.
    studio.set(model_name_or_path="no/such/model")
    web = page_call(
        demo, "field_changed_model_name_or_path", form__model_name_or_path="no/such/model"
    )
    text = same_words(web["train.preflight"], studio.preflight.value)
    assert "no/such/model" in text and "model_name_or_path" in text


def test_preflight_names_bad_data_lines_in_every_face(faces, tmp_path):
    """Pre-flight is the data checker: the web Train tab and the notebook show its errors with
    file:line and block Start (was: 0 errors, and the run failed with no file or line)."""
    demo, studio, _ = faces
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "q", "pos": ["p"], "neg": ["n"]}\n' * 3 + "garbage\n")
    studio.set(train_data=[str(bad)])
    web = page_call(demo, "field_changed_train_data", form__train_data=str(bad))
    text = same_words(web["train.preflight"], studio.preflight.value)
    assert f"error {bad}:4 : not valid JSON" in text and "one complete JSON object" in text
    assert web["train.start"]["interactive"] is False and studio.train_tab.start_button.disabled


# ---------------------------------------------------------------------------- cutoffs


def test_cutoffs_typed_with_spaces_are_three_cutoffs_in_every_face(faces):
    """Was: the web read "1 5 10" as 1510."""
    import gradio as gr

    demo, studio, _ = faces
    assert actions.cutoffs("1 5 10") == actions.cutoffs("1,5,10") == [1, 5, 10]
    with pytest.raises(ValueError, match="whole numbers"):
        actions.cutoffs("1 five")
    with pytest.raises(gr.Error, match="whole numbers"):
        page_call(demo, "evaluate_models", eval__k="1 five", eval__model="somewhere")
    with pytest.raises(ValueError, match="whole numbers"):
        studio.compare_models("bundled:all-MiniLM-L6-v2", "somewhere", ks="1 five")


# ---------------------------------------------------------------------------- runs


def test_run_lookup_is_one_rule_and_a_browser_name_stays_inside(tmp_path, faces):
    """Was: the notebook's find_run and the web's own `runs_dir / name`, which let a page
    reach a folder outside the runs folder."""
    import gradio as gr

    demo, studio, runs_dir = faces
    ws = actions.Workspace(runs_dir, ROOT)
    run = make_run(runs_dir, "mine", {"state": "stopped"})
    outside = make_run(tmp_path / "elsewhere", "theirs", {"state": "stopped"})
    assert actions.find_run(ws, "mine") == run
    assert actions.find_run(ws, outside) == outside  # a cell may name any run by its path
    with pytest.raises(FileNotFoundError, match="no run 'nope'"):
        actions.find_run(ws, "nope")
    for name in ("../elsewhere/theirs", str(outside), ".."):
        with pytest.raises(FileNotFoundError):
            actions.find_run(ws, name, inside=True)
        with pytest.raises(gr.Error, match="no run"):
            page_call(demo, "open_run", runs__pick=name)
    assert studio.open_run(outside)["config"]


def test_run_comparison_is_one_figure(faces):
    """Was: two implementations (the web's named runs by folder, the notebook's by path)."""
    demo, studio, runs_dir = faces
    make_run(runs_dir, "a", {"state": "stopped"}, steps=3)
    make_run(runs_dir, "b", {"state": "stopped"}, steps=5)
    web = page_call(demo, "compare", runs__compare=["a", "b"])[None]
    notebook = studio.compare_runs(["a", "b"])
    names = [t.name for t in web.data]
    assert names == [t.name for t in notebook.data] and {"a", "b"} <= set(names)
    assert [len(t.x) for t in web.data] == [len(t.x) for t in notebook.data]


# ---------------------------------------------------------------------------- the form


def test_a_whole_number_in_a_number_box_is_written_whole(faces):
    """Was: the notebook had its own fix for 4.0 (a FloatText's value); now studio.form's."""
    demo, studio, _ = faces
    web = page_call(demo, "field_changed_learning_rate", form__learning_rate=1.0)
    studio.set(learning_rate=1.0)
    assert "--learning_rate 1 " in web["command.script"] + " "
    assert "--learning_rate 1 " in studio.command_text() + " "
    assert "1.0" not in studio.command_text().split("--learning_rate")[1].split()[0]


def test_the_studio_section_is_editable_on_the_web_too(tmp_path, faces):
    """Was: only the notebook could set `studio:` keys; the web kept a loaded config's."""
    demo, studio, _ = faces
    reg = demo.registry
    assert {"eval_data", "evaluate_at_end", "rerank_top_k"} <= set(reg.studio)
    target = tmp_path / "saved.yaml"
    saved = page_call(
        demo,
        "save_config",
        studio__eval_data="example_data/eval",
        studio__rerank_top_k="50",
        command__config_path=str(target),
    )
    assert "Saved" in saved[None]
    cfg = config_mod.load(target)
    assert cfg.studio["eval_data"] == "example_data/eval" and cfg.studio["rerank_top_k"] == 50
    studio.set(eval_data="example_data/eval", rerank_top_k=50)
    assert studio.config().studio == cfg.studio
    # A bad number names its key, in both faces.
    web = page_call(demo, "field_changed_learning_rate", studio__rerank_top_k="many")
    assert "studio.rerank_top_k" in web["train.preflight"]
    studio.set(rerank_top_k="many")
    assert "studio.rerank_top_k" in studio.preflight.value
    # Loading a config shows its studio: section in the web form.
    shown = page_call(demo, "load_config", command__config_path=str(target))
    assert shown["studio.eval_data"] == "example_data/eval" and shown["studio.rerank_top_k"] == "50"


def test_saving_never_overwrites_unless_asked(tmp_path, faces):
    import gradio as gr

    demo, studio, _ = faces
    target = tmp_path / "mine.yaml"
    target.write_text("keep me\n")
    with pytest.raises(gr.Error, match="exists"):
        page_call(demo, "save_config", command__config_path=str(target))
    with pytest.raises(FileExistsError, match="exists"):
        studio.save(target)
    assert target.read_text() == "keep me\n"


def test_check_form_turns_a_crash_into_an_error_line():
    ws = actions.Workspace(ROOT / "runs", ROOT)
    cfg = StudioConfig({"model_name_or_path": "bundled:all-MiniLM-L6-v2"})
    result = actions.check_form(ws, cfg, [Problem(ERROR, "typed wrong", field="x")])
    assert not result.startable and result.script.startswith("#!")
    assert any(p.message == "typed wrong" for p in result.problems)


# ---------------------------------------------------------------------------- the page


def test_every_tab_is_one_module_and_a_broken_one_fails_loudly(monkeypatch):
    """Was: three ways to compose a tab, one of which showed "Coming next" for any ImportError,
    hiding a real import bug. A tab module that cannot be imported now fails the page."""
    import sys

    import studio.webui.tabs as tabs
    from studio.webui.app import AppContext, build_app

    for tab in tabs.TABS:
        assert callable(tab.layout) and callable(tab.bind) and tab.ID and tab.TITLE
    monkeypatch.delitem(sys.modules, "studio.webui.tabs")
    monkeypatch.setitem(sys.modules, "studio.webui.tabs.evaluate", None)  # import fails
    with pytest.raises(ImportError, match="studio.webui.tabs.evaluate"):
        build_app(AppContext(ROOT / "runs", ROOT))


def test_handlers_take_and_give_components_by_name():
    """No handler gets the form by position: every event with more than one input takes a
    set (one dict keyed by component), and the registry names every component it reads."""
    from studio.webui.app import AppContext, build_app

    demo = build_app(AppContext(ROOT / "runs", ROOT))
    reg = demo.registry
    for fn in demo.fns.values():
        inputs = fn.inputs
        if len(inputs) > 1:
            assert fn.inputs_as_dict, f"{fn.name} takes {len(inputs)} inputs by position"
            assert "?" not in reg.ids(inputs), fn.name
    assert web_handler(demo, "attach")
