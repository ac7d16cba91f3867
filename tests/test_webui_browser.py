"""The web studio in a real browser (headless Debian Chromium through Playwright).

The server is the real `python launch.py`; the run it starts is a real CPU fine-tune of the
bundled model. Screenshots of the main tabs are saved (to docs/ with BGE_STUDIO_SCREENSHOTS=docs).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import ROOT, SEED_SCRIPT

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CHROMIUM = "/usr/bin/chromium"
# Screenshots for the README: BGE_STUDIO_SCREENSHOTS=docs pytest tests/test_webui_browser.py
# (by default they go to a temporary folder, so running the tests leaves the tree clean).
DOCS = Path(os.environ.get("BGE_STUDIO_SCREENSHOTS") or tempfile.mkdtemp(prefix="bge-shots-"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(runs_dir: Path, *extra: str):
    port = _free_port()
    log = open(runs_dir.parent / f"server-{port}.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "launch.py", "--port", str(port), "--runs-dir", str(runs_dir), *extra],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=dict(os.environ, HF_HUB_OFFLINE="1"),
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                raise AssertionError((runs_dir.parent / f"server-{port}.log").read_text()) from None
            time.sleep(0.5)
    return proc, url, log


def _stop(proc, log):
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (scripts/test.sh does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        yield b
        b.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    runs_dir = tmp_path_factory.mktemp("web") / "runs"
    proc, url, log = _serve(runs_dir)
    yield url, runs_dir
    _stop(proc, log)
    from studio.training import runs

    for run in runs.list_runs(runs_dir):  # a test that failed mid-run leaves no training behind
        if run.state in runs.ACTIVE_STATES:
            runs.stop(run.path)


def _page(browser, url):
    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    page.goto(url)
    page.wait_for_selector("#form-model_name_or_path", timeout=60_000)
    return page


def _command_text(page) -> str:
    return page.locator("#studio-command .cm-content").inner_text()


def _tab(page, name: str):
    page.get_by_role("tab", name=name, exact=True).click()


def test_fields_change_the_command(browser, server):
    url, _ = server
    page = _page(browser, url)
    _tab(page, "Command")
    page.wait_for_function(
        "document.querySelector('#studio-command .cm-content')"
        ".innerText.includes('--max_steps 20')",
        timeout=30_000,
    )
    _tab(page, "Training")
    page.locator("#form-learning_rate input").fill("0.0007")
    page.locator("#form-gradient_checkpointing input").check()
    _tab(page, "Command")
    # Two changes, two events: the command must end up with both (CI once read it between
    # them; an older event finishing last would lose the newer change, and this times out).
    page.wait_for_function(
        "(() => { const t = document.querySelector('#studio-command .cm-content').innerText;"
        " return t.includes('--learning_rate 0.0007') && t.includes('--gradient_checkpointing');"
        " })()",
        timeout=30_000,
    )
    page.screenshot(path=str(DOCS / "command.png"))
    # A bad value is marked at the field and keeps Start disabled.
    _tab(page, "Training")
    page.get_by_text("Embedding loss", exact=True).click()
    page.locator("#form-mrl_dims textarea").wait_for()
    page.wait_for_timeout(1000)  # the accordion's inputs wire their events once mounted
    page.locator("#form-mrl_dims textarea").press_sequentially("64 big")
    page.wait_for_selector("#form-mrl_dims.studio-invalid", timeout=30_000)
    assert "expected a whole number" in page.locator("#form-mrl_dims").inner_text()
    _tab(page, "Train")
    page.wait_for_selector("#studio-start[disabled]", timeout=30_000)
    _tab(page, "Training")
    page.screenshot(path=str(DOCS / "training.png"))
    page.close()


def test_import_seed_script_shows_its_diagnostics(browser, server):
    url, _ = server
    page = _page(browser, url)
    _tab(page, "Command")
    page.locator("#studio-script-path textarea, #studio-script-path input").first.fill(
        str(SEED_SCRIPT)
    )
    page.locator("#studio-import").click()
    page.wait_for_function(
        "document.querySelector('#studio-diagnostics').innerText"
        ".includes('does not end with a backslash')",
        timeout=30_000,
    )
    text = page.locator("#studio-diagnostics").inner_text()
    assert "passage_instruction_for_retrieval" in text
    assert "8 processes" in text
    page.wait_for_function(
        "document.querySelector('#studio-command .cm-content')"
        ".innerText.includes('bge-large-en-v1.5')",
        timeout=30_000,
    )
    page.screenshot(path=str(DOCS / "import.png"), full_page=True)
    page.close()


def _plot_points(page, selector: str) -> int:
    return page.evaluate(f"""() => {{
        const el = document.querySelector('{selector} .js-plotly-plot');
        if (!el || !el.data || !el.data.length) return 0;
        return el.data[0].x ? el.data[0].x.length : 0;
    }}""")


def test_train_watch_stop_and_find_it_after_reload(browser, server):
    url, runs_dir = server
    page = _page(browser, url)
    _tab(page, "Train")
    page.wait_for_selector("#studio-preflight:has-text('No problems found')", timeout=30_000)
    page.locator("#studio-start").click()
    page.wait_for_selector("#studio-status:has-text('running')", timeout=60_000)
    deadline = time.monotonic() + 400
    points = 0
    while time.monotonic() < deadline and points < 3:
        time.sleep(1)
        points = _plot_points(page, "#studio-train-plot")
    assert points >= 3, page.locator("#studio-log").inner_text()
    grown = points
    while time.monotonic() < deadline and _plot_points(page, "#studio-train-plot") <= grown:
        time.sleep(1)
    assert _plot_points(page, "#studio-train-plot") > grown  # the chart gains points live
    assert "step" in page.locator("#studio-progress-box").inner_text()
    page.screenshot(path=str(DOCS / "train.png"), full_page=True)
    page.locator("#studio-stop").click()
    page.wait_for_selector("#studio-status:has-text('stopped')", timeout=60_000)
    (run_dir,) = [p for p in runs_dir.iterdir() if p.is_dir()]
    assert '"stopped"' in (run_dir / "status.json").read_text()

    page.reload()
    page.wait_for_selector("#form-model_name_or_path", timeout=60_000)
    _tab(page, "Runs")
    page.wait_for_selector(f"#runs-table:has-text('{run_dir.name}')", timeout=30_000)
    page.locator("#runs-pick input").fill(run_dir.name)
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => { const el = document.querySelector('#runs-plot "
        ".js-plotly-plot'); return el && el.data && el.data[0].x.length >= 3 }",
        timeout=30_000,
    )
    assert "stopped" in page.locator("#runs-summary").inner_text()
    page.screenshot(path=str(DOCS / "runs.png"), full_page=True)
    page.close()


def test_language_switch(browser, server):
    url, _ = server
    page = _page(browser, url)
    page.locator("#studio-lang label:has-text('zh')").click()
    page.wait_for_selector("#form-model_name_or_path:has-text('模型名称或路径')", timeout=30_000)
    page.close()


def test_login_is_required_with_auth(browser, tmp_path):
    proc, url, log = _serve(tmp_path / "runs", "--auth", "alice:s3cret-pw")
    try:
        page = browser.new_page()
        page.goto(url)
        page.wait_for_selector("input[type=password]", timeout=60_000)
        assert page.locator("#form-model_name_or_path").count() == 0
        page.get_by_label("username").fill("alice")
        page.get_by_label("password").fill("wrong")
        page.get_by_role("button", name="Login").click()
        page.wait_for_selector("text=Incorrect", timeout=30_000)
        assert page.locator("#form-model_name_or_path").count() == 0
        page.get_by_label("username").fill("alice")
        page.get_by_label("password").fill("s3cret-pw")
        page.get_by_role("button", name="Login").click()
        page.wait_for_selector("#form-model_name_or_path", timeout=60_000)
        page.close()
    finally:
        _stop(proc, log)
    assert (
        "s3cret-pw"
        not in (tmp_path / "runs")
        .parent.joinpath(next(p.name for p in tmp_path.iterdir() if p.name.startswith("server-")))
        .read_text()
    )


def test_data_tab_checks_previews_and_measures_the_forms_data(browser, server):
    url, _ = server
    page = _page(browser, url)
    _tab(page, "Data")
    page.locator("#data-check").click()
    page.wait_for_selector("#data-report:has-text('360 rows')", timeout=60_000)
    assert "0 error(s)" in page.locator("#data-report").inner_text()
    page.locator("#data-preview").click()
    page.wait_for_selector(
        "#data-preview-table:has-text('example_data/train.jsonl')", timeout=60_000
    )
    page.locator("#data-lengths").click()
    page.wait_for_function(
        "() => { const el = document.querySelector('#data-lengths-plot "
        ".js-plotly-plot'); return el && el.data && el.data.length >= 2 }",
        timeout=120_000,
    )
    page.screenshot(path=str(DOCS / "data.png"), full_page=True)
    page.close()


def test_evaluate_tab_compares_two_models(browser, server):
    url, _ = server
    page = _page(browser, url)
    _tab(page, "Evaluate")
    page.get_by_role("tab", name="Compare two models").click()
    bundled = "bundled:all-MiniLM-L6-v2"
    page.locator("#eval-model textarea, #eval-model input").first.fill(bundled)
    page.locator("#eval-models-btn").click()
    page.wait_for_selector("#eval-summary:has-text('nDCG@10 change')", timeout=300_000)
    assert "+0.0000" in page.locator("#eval-summary").inner_text()  # same model both sides
    page.wait_for_function(
        "document.querySelector('#eval-table').innerText.includes('nDCG@10')", timeout=30_000
    )
    page.wait_for_function(
        "() => { const el = document.querySelector('#eval-chart .js-plotly-plot');"
        " return el && el.data && el.data.length === 2 }",
        timeout=30_000,
    )
    page.screenshot(path=str(DOCS / "evaluate.png"), full_page=True)
    page.close()


def test_two_browsers_keep_their_own_forms(browser, server):
    url, _ = server
    first, second = _page(browser, url), _page(browser, url)
    _tab(first, "Training")
    first.locator("#form-learning_rate input").fill("0.0042")
    _tab(first, "Command")
    first.wait_for_function(
        "document.querySelector('#studio-command .cm-content')"
        ".innerText.includes('--learning_rate 0.0042')",
        timeout=30_000,
    )
    _tab(second, "Command")
    second.wait_for_function(
        "document.querySelector('#studio-command .cm-content').innerText.includes('--max_steps')",
        timeout=30_000,
    )
    assert "0.0042" not in _command_text(second)
    first.close()
    second.close()


def _pick_module(page, module: str) -> None:
    # The previous switch's events (form rebuild, command) show a progress overlay on the menu
    # until they finish; under load (the other test worker training) that takes past 30 s.
    page.locator("#studio-module input").click(timeout=120_000)
    page.locator("#studio-module input").fill(module)
    page.get_by_role("option", name=module).first.click()


def _command_has(page, text: str) -> None:
    page.get_by_role("tab", name="Command", exact=True).click()
    page.wait_for_function(
        f"document.querySelector('#studio-command .cm-content').innerText.includes({text!r})",
        timeout=30_000,
    )


def test_switching_the_module_rebuilds_the_form(browser, server):
    """Picking the reranker hides `temperature`, shows `max_len`, names what was dropped and
    changes the command; picking BGE-M3 shows `colbert_dim`."""
    url, _ = server
    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    page.goto(url)
    page.wait_for_selector("#form-model_name_or_path", timeout=60_000)
    page.get_by_role("tab", name="Training", exact=True).click()
    page.wait_for_selector("#form-temperature", state="visible", timeout=30_000)
    assert not page.locator("#form-max_len").is_visible()
    assert not page.locator("#form-colbert_dim").is_visible()

    page.get_by_role("tab", name="Model & data", exact=True).click()
    _pick_module(page, "reranker.encoder_only.base")
    page.wait_for_selector("#studio-module-msg:has-text('dropped')", timeout=60_000)
    message = page.locator("#studio-module-msg").inner_text()
    assert "temperature" in message and "sentence_pooling_method" in message
    assert "learning_rate" not in message  # kept: the reranker has it too
    page.get_by_role("tab", name="Training", exact=True).click()
    page.wait_for_selector("#form-temperature", state="hidden", timeout=30_000)
    page.wait_for_selector("#form-max_len", state="visible", timeout=30_000)
    assert page.locator("#form-learning_rate input").input_value() == "0.00003"
    _command_has(page, "-m FlagEmbedding.finetune.reranker.encoder_only.base")
    command = page.locator("#studio-command .cm-content").inner_text()
    assert "--temperature" not in command and "--learning_rate 3e-05" in command

    page.get_by_role("tab", name="Model & data", exact=True).click()
    _pick_module(page, "embedder.encoder_only.m3")
    page.get_by_role("tab", name="Training", exact=True).click()
    page.wait_for_selector("#form-colbert_dim", state="visible", timeout=60_000)
    page.wait_for_selector("#form-temperature", state="visible", timeout=30_000)
    assert not page.locator("#form-max_len").is_visible()
    _command_has(page, "-m FlagEmbedding.finetune.embedder.encoder_only.m3")
    page.close()


def test_an_older_slower_check_never_overwrites_a_newer_form(browser, tmp_path, monkeypatch):
    """Each field's event carries the whole form as the browser sent it. Here the first edit's
    check is made slow (4 s, as a pre-flight over a big train file can be) and the second's is
    quick: run side by side, the first finished last and the command lost the second change
    for good. The events now run one at a time in send order."""
    from studio.notebook import launch_web
    from studio.webui import form_state

    real_check = form_state.check

    def slow_before_the_tick(ctx, reg, data):
        lr = str(data[reg.form["learning_rate"]])
        if lr.startswith("0.0007") and not data[reg.form["gradient_checkpointing"]]:
            time.sleep(4)
        return real_check(ctx, reg, data)

    monkeypatch.setattr(form_state, "check", slow_before_the_tick)
    demo = launch_web(
        ROOT / "example_data" / "quickstart.yaml",
        runs_dir=tmp_path / "runs",
        base_dir=ROOT,
        port=_free_port(),
        inline=False,
    )
    page = _page(browser, demo.local_url)
    try:
        _tab(page, "Training")
        page.locator("#form-learning_rate input").fill("0.0007")
        page.wait_for_timeout(500)  # the first event is in its slow check
        page.locator("#form-gradient_checkpointing input").check()
        _tab(page, "Command")
        both = (
            "(() => { const t = document.querySelector('#studio-command .cm-content').innerText;"
            " return t.includes('--learning_rate 0.0007')"
            " && t.includes('--gradient_checkpointing'); })()"
        )
        page.wait_for_function(both, timeout=60_000)
        page.wait_for_timeout(6000)  # past the slow check: nothing older may land after
        text = _command_text(page)
        assert "--learning_rate 0.0007" in text and "--gradient_checkpointing" in text
    finally:
        page.close()
        demo.close()
