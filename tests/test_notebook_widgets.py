"""The notebook face: widget callbacks driven from Python, as a person's clicks would drive them.

Fast tests build a Studio over the quickstart config and check the form, the live command,
the data panel and the runs/eval panels over files on disk. The slow ones start a real
fine-tune of the bundled model and watch the live chart grow, then stop it.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import ROOT, tiny_train_config

from studio.core import config as config_mod
from studio.core import form
from studio.facts.schema import load_schema
from studio.notebook import Studio
from studio.training import runs

QUICKSTART = ROOT / "example_data" / "quickstart.yaml"
TIMEOUT_S = 600


@pytest.fixture
def st(tmp_path):
    studio = Studio(QUICKSTART, runs_dir=tmp_path / "runs", base_dir=ROOT)
    yield studio
    studio.close()


# --------------------------------------------------------------------------- the form


def test_form_has_one_typed_widget_per_field_basic_first(st):
    import ipywidgets as w

    schema = load_schema()
    assert list(st.form.fields) == form.form_field_names()
    kinds = {
        "checkbox": w.Checkbox,
        "dropdown": w.Dropdown,
        "integer": w.IntText,
        "number": w.FloatText,
        "lines": w.Textarea,
        "text": w.Text,
    }
    for name, widget in st.form.fields.items():
        assert type(widget) is kinds[form.widget_kind(schema[name])], name
    assert list(st.form.launch) == list(form.LAUNCH_KEYS)
    pages = st.form.pages()
    training = pages["training"].children
    basic, groups = form.training_fields()
    shown = [c for c in training if c in st.form.fields.values()]
    assert shown == [st.form.fields[f.name] for f in basic]  # basic fields, in order, first
    accordion = training[-1]
    assert isinstance(accordion, w.Accordion) and accordion.selected_index is None
    assert list(accordion.titles) == list(groups)
    assert [len(box.children) for box in accordion.children] == [len(fs) for fs in groups.values()]
    assert st.widget().titles[:3] == ("Model & data", "Training", "Launch")
    assert len(st.widget().children) == 8


def test_chinese_labels_come_from_the_same_tables(tmp_path):
    zh = Studio(QUICKSTART, runs_dir=tmp_path / "runs", base_dir=ROOT, lang="zh")
    assert zh.form.fields["learning_rate"].description.startswith("学习率")
    assert zh.widget().titles[0] == "模型与数据"
    assert zh.config().args == Studio(QUICKSTART, base_dir=ROOT).config().args


def test_loaded_config_round_trips_through_the_widgets(st):
    loaded = config_mod.load(QUICKSTART)
    cfg = st.config()
    assert cfg.args == loaded.args
    assert cfg.torchrun == loaded.torchrun and cfg.deepspeed == loaded.deepspeed
    assert cfg.studio == loaded.studio


def test_changing_a_field_changes_the_config_and_the_command(st):
    assert "--learning_rate 3e-05" in st.command.value
    assert "--save_steps 10 " in st.command.value  # as the YAML says, not 10.0
    st.form.fields["learning_rate"].value = 1e-4
    assert st.config().args["learning_rate"] == 1e-4
    assert "--learning_rate 0.0001" in st.command.value
    assert "3e-05" not in st.command.value

    st.form.fields["train_data"].value = "example_data/train.jsonl\nmore/data.jsonl"
    assert st.config().args["train_data"] == ["example_data/train.jsonl", "more/data.jsonl"]
    assert "more/data.jsonl" in st.command.value
    assert "more/data.jsonl" in st.preflight.value  # pre-flight: that file does not exist
    assert st.train_tab.start_button.disabled

    st.form.fields["train_data"].value = "example_data/train.jsonl"
    st.form.launch["precision"].value = "fp16"
    assert st.config().args["fp16"] is True and "--fp16" in st.command.value
    st.form.launch["ds_mode"].value = "none"
    assert st.config().deepspeed is None and "--deepspeed" not in st.command.value

    st.set(max_steps=12, save_steps=4, evaluate_at_end=False)
    cfg = st.config()
    assert cfg.args["max_steps"] == 12 and cfg.args["save_steps"] == 4
    assert "evaluate_at_end" not in cfg.studio
    assert st.form.fields["max_steps"].value == 12  # the form shows what a cell set
    assert "--max_steps 12" in st.command.value


def test_a_bad_value_marks_its_field_and_blocks_start(st):
    from studio.core.config import ConfigError

    assert not st.train_tab.start_button.disabled
    widget = st.form.fields["eval_steps"]  # a float without default: a text box
    widget.value = "abc"
    assert "eval_steps" in st.form.errors and widget.layout.border
    assert widget.tooltip.startswith("⚠")
    assert "eval_steps" in st.preflight.value and st.train_tab.start_button.disabled
    with pytest.raises(ConfigError, match="eval_steps"):
        st.config()
    st.train_tab.start_button.click()  # a click with a bad form starts nothing, says why
    assert "eval_steps" in st.train_tab.message.value
    assert not (st.runs_dir).exists() or not any(st.runs_dir.iterdir())
    widget.value = ""
    assert not st.form.errors and not widget.layout.border
    assert not st.train_tab.start_button.disabled


def test_set_names_the_closest_field_for_a_typo(st):
    with pytest.raises(KeyError, match="learning_rate"):
        st.set(learning_rat=1e-4)
    with pytest.raises(KeyError, match="precision"):
        st.set(fp16=True)


def test_save_and_load_a_config(st, tmp_path):
    st.set(max_steps=7)
    saved = st.save(tmp_path / "mine.yaml")
    st.set(max_steps=3)
    st.load(saved)
    assert st.config().args["max_steps"] == 7
    assert "--max_steps 7" in st.command.value


# --------------------------------------------------------------------------- data


def test_data_panel_buttons_show_the_core_results(st):
    panel = st.data_tab
    panel.check_button.click()
    assert panel.message.value == ""
    assert "360 rows" in panel.report.value and "0 error(s)" in panel.report.value
    assert panel.results["check"].rows == 360

    panel.stats_button.click()
    assert "negatives_needed" in panel.stats.value
    (figure,) = panel.stats_plot.children
    assert figure.data[0].type == "bar"

    panel.preview_button.click()
    rows = panel.results["preview"]
    assert len(rows) == 8 and rows[0].query
    assert "What the model sees" in panel.preview_table.value

    panel.paths.value = "example_data/missing.jsonl"
    panel.check_button.click()
    assert "missing.jsonl" in panel.report.value and "error" in panel.report.value


def test_token_lengths_use_the_models_tokenizer(st):
    st.set(query_max_len=8)
    panel = st.data_tab
    panel.sample.value = 50
    panel.lengths_button.click()
    assert panel.message.value == ""
    result = panel.results["lengths"]
    assert result.query_max_len == 8 and result.truncated("query") > 0
    (figure,) = panel.lengths_plot.children
    assert [t.type for t in figure.data] == ["histogram", "histogram"]


# --------------------------------------------------------------------------- runs and evaluation


def _fake_finished_run(runs_dir: Path, name: str, losses: list[float]) -> Path:
    """A run folder as the core writes it, for the panels that only read runs."""
    run_dir = runs_dir / name
    run_dir.mkdir(parents=True)
    cfg = tiny_train_config(output_dir=str(run_dir / "model"))
    config_mod.save(cfg, run_dir / "config.yaml")
    (run_dir / "status.json").write_text(
        json.dumps({"state": "succeeded", "exit_code": 0, "started_at": time.time()})
    )
    lines = [{"event": "train_begin", "max_steps": len(losses)}]
    lines += [
        {"step": i, "loss": loss, "learning_rate": 1e-5, "elapsed_s": float(i), "eta_s": 0.0}
        for i, loss in enumerate(losses, 1)
    ]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    (run_dir / "train.log").write_text("step 1\nstep 2\n")
    return run_dir


def test_runs_panel_lists_opens_compares_and_loads_runs(st):
    _fake_finished_run(st.runs_dir, "run-a", [0.9, 0.7, 0.5])
    _fake_finished_run(st.runs_dir, "run-b", [0.8, 0.0, 0.3])  # a 0.0 loss is a point too
    st.runs_panel()
    panel = st.runs_tab
    assert set(panel.pick.options) == {"run-a", "run-b"}
    assert "run-a" in panel.table.value and "succeeded" in panel.table.value

    panel.pick.value = "run-b"
    panel.open_button.click()
    assert panel.message.value == ""
    assert "run-b" in panel.summary.value
    (figure,) = panel.plot.children
    assert list(figure.data[0].y) == [0.8, 0.0, 0.3]
    assert "model_name_or_path" in panel.config_text.value

    panel.compare_pick.value = ("run-a", "run-b")
    panel.compare_button.click()
    (overlay,) = panel.compare_plot.children
    assert [t.name for t in overlay.data] == ["run-a", "run-b"]

    panel.load_button.click()
    cfg = st.config()
    assert cfg.args["max_steps"] == 4 and "output_dir" not in cfg.args

    panel.watch_button.click()  # a finished run in the Train panel: chart and full bar
    st.close()
    assert st.run_dir.name == "run-b"
    assert list(st.figure.data[0].x) == [1, 2, 3]
    assert st.train_tab.progress.value == 3 and st.train_tab.progress.bar_style == "success"


def test_eval_panel_shows_a_report_as_table_and_chart(st):
    _fake_finished_run(st.runs_dir, "done", [0.5])
    assert st.eval_tab.update() == ["done"]
    assert st.eval_tab.data.value == "example_data/eval"
    report = {
        "models": {
            "base": {"ndcg_at_10": 0.70, "recall_at_10": 0.85},
            "final": {"ndcg_at_10": 0.75, "recall_at_10": 0.90},
        },
        "delta": {"ndcg_at_10": 0.05, "recall_at_10": 0.05},
        "warnings": ["a warning for the user"],
    }
    st.eval_tab.show(report)
    assert "+0.0500" in st.eval_tab.summary.value
    assert "a warning for the user" in st.eval_tab.summary.value
    assert "nDCG@10" in st.eval_tab.table.value and "delta" in st.eval_tab.table.value
    (chart,) = st.eval_tab.chart.children
    assert [t.name for t in chart.data] == ["base", "final"]

    st.eval_tab.model.value = ""
    st.eval_tab.models_button.click()  # no fine-tuned model given: says so, no crash
    assert "fine-tuned model" in st.eval_tab.message.value


# --------------------------------------------------------------------------- the web studio


def test_launch_web_serves_the_gradio_studio(tmp_path):
    from studio.notebook import launch_web

    demo = launch_web(QUICKSTART, runs_dir=tmp_path / "runs", base_dir=ROOT, inline=False)
    try:
        with urllib.request.urlopen(demo.local_url, timeout=30) as response:
            assert response.status == 200
            assert "BGE Studio" in response.read().decode("utf-8", "replace")
    finally:
        demo.close()


# --------------------------------------------------------------------------- a real run


def _processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line names `text` (a run folder): supervisor, torchrun,
    trainer, whichever process group torchrun put its workers in."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def _wait_for(predicate, what: str, timeout_s: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_start_grows_the_chart_and_stop_leaves_no_process(tmp_path):
    st = Studio(tiny_train_config(max_steps=6, save_steps=100), tmp_path / "runs", ROOT)
    try:
        assert len(st.figure.data[0].x or ()) == 0
        st.train_tab.start_button.click()
        assert st.train_tab.message.value == "", st.train_tab.message.value
        run_dir = st.run_dir
        assert run_dir.parent == tmp_path / "runs" and (run_dir / "config.yaml").is_file()
        assert st.session.following  # the background refresh thread

        def chart_has_points() -> bool:
            st.refresh()  # what the thread does once a second, called directly
            return len(st.figure.data[0].x or ()) > 0

        _wait_for(chart_has_points, "a point on the loss chart")
        assert not st.train_tab.stop_button.disabled
        assert st.train_tab.progress.max == 6 and st.train_tab.progress.value >= 1
        assert "step" in st.train_tab.progress_label.value
        assert list(st.figure.data[0].x) == st.series.steps[: len(st.figure.data[0].x)]

        pgid = json.loads((run_dir / "status.json").read_text())["pgid"]
        st.train_tab.stop_button.click()
        assert st.train_tab.message.value == "", st.train_tab.message.value
        assert st.status()["state"] == "stopped"
        assert runs.group_members(pgid) == []
        assert _processes_mentioning(str(run_dir)) == []
        assert "stopped" in st.train_tab.status.value and st.train_tab.stop_button.disabled
        _wait_for(lambda: not st.session.following, "the refresh thread to end", 10)
    finally:
        st.close()
        if st.run_dir is not None:
            runs.stop(st.run_dir)


@pytest.mark.slow
def test_resume_from_the_runs_panel_continues_the_chart(tmp_path):
    st = Studio(tiny_train_config(max_steps=6, save_steps=2), tmp_path / "runs", ROOT)
    try:
        run_dir = st.start()
        checkpoint = st.wait_for_checkpoint()
        assert checkpoint.name == "checkpoint-2"
        st.stop()
        assert st.status()["state"] == "stopped"

        st.runs_panel()
        st.runs_tab.pick.value = run_dir.name
        st.runs_tab.resume_button.click()
        assert st.runs_tab.message.value == "", st.runs_tab.message.value
        status = st.wait(TIMEOUT_S)
        assert status["state"] == "succeeded", (run_dir / "train.log").read_text()[-3000:]
        assert status["attempt"] == 2 and status["resumed_from"] == str(checkpoint)
        assert st.series.steps == [1, 2, 3, 4, 5, 6]
        assert list(st.figure.data[0].x) == [1, 2, 3, 4, 5, 6]
        assert st.train_tab.progress.value == 6
    finally:
        st.close()
        if st.run_dir is not None:
            runs.stop(st.run_dir)
