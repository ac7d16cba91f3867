"""`data pairs`: training pairs from documents (title, crop, and an LLM behind a real HTTP server).

The LLM tests start a small OpenAI-compatible server on localhost in the test (the real endpoint
is the user's): it answers `/chat/completions`, can fail for a while (503, then recovers), go
down for good, or refuse the key, and counts what it was asked, so a test sees retries, resume,
and that nothing is lost or written twice.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from studio.cli.commands import main as cli
from studio.datawork import llm_pairs, pairs

KEY = "sk-test-not-a-real-key-123456"


def write_corpus(path, n=12, titled=True):
    with open(path, "w") as fh:
        for i in range(n):
            words = " ".join(f"w{i}_{j}" for j in range(60))
            title = f"Topic number {i}" if titled else ""
            fh.write(json.dumps({"_id": f"d{i}", "title": title, "text": words}) + "\n")
    return path


def read_rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


class Endpoint:
    """An OpenAI-compatible chat endpoint with scripted failures."""

    def __init__(self):
        self.requests: list[str] = []  # the title each request was about
        self.auth: list[str | None] = []
        self.fail_from = self.fail_count = 0  # requests numbered from 1
        self.down = False
        self.refuse = None
        self.lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                prompt = body["messages"][0]["content"]
                title = re.search(r"Title: (.*)", prompt).group(1)
                with endpoint.lock:
                    endpoint.requests.append(title)
                    endpoint.auth.append(self.headers.get("Authorization"))
                    number = len(endpoint.requests)
                if endpoint.refuse:
                    return self.reply(endpoint.refuse, {"error": {"message": "no"}})
                failing = endpoint.fail_from and (
                    endpoint.fail_from <= number < endpoint.fail_from + endpoint.fail_count
                )
                if endpoint.down or failing:
                    return self.reply(503, {"error": {"message": "overloaded"}}, retry_after="0")
                answer = f"1. What is {title}?\n2. Where is {title} used?"
                self.reply(
                    200, {"choices": [{"message": {"role": "assistant", "content": answer}}]}
                )

            def reply(self, status, payload, retry_after=None):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if retry_after is not None:
                    self.send_header("Retry-After", retry_after)
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint(monkeypatch):
    monkeypatch.setenv("STUDIO_TEST_LLM_KEY", KEY)
    ep = Endpoint()
    yield ep
    ep.close()


def llm_args(corpus, out, endpoint, *extra):
    return [
        "data", "pairs", str(corpus), "--from", "llm", "--out", str(out),
        "--base-url", endpoint.url, "--model", "tiny-chat",
        "--api-key-env", "STUDIO_TEST_LLM_KEY", "--backoff", "0.01", "--concurrency", "3",
        *extra,
    ]  # fmt: skip


def test_title_pairs_from_a_beir_corpus_and_from_a_folder_of_markdown(tmp_path, capsys):
    corpus = write_corpus(tmp_path / "corpus.jsonl", n=5)
    with open(corpus, "a") as fh:
        fh.write(json.dumps({"_id": "untitled", "title": "", "text": "a body"}) + "\n")
    out = tmp_path / "pairs.jsonl"
    assert cli(["data", "pairs", str(corpus), "--from", "title", "--out", str(out)]) == 0
    rows = read_rows(out)
    assert [r["doc_id"] for r in rows] == ["d0", "d1", "d2", "d3", "d4"]
    assert rows[0]["query"] == "Topic number 0" and rows[0]["pos"][0].startswith("w0_0 w0_1")
    assert all(r["neg"] == [] for r in rows)
    printed = capsys.readouterr().out
    assert "1 of 6 documents gave no pair" in printed and "data mine" in printed

    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.md").write_text("intro line\n# Installing the pump\nStep one: open the valve.\n")
    (docs / "sub" / "b.txt").write_text("Cleaning the filter weekly\nRinse it with water.\n")
    out2 = tmp_path / "pairs2.jsonl"
    assert cli(["data", "pairs", str(docs), "--from", "title", "--out", str(out2)]) == 0
    got = {r["doc_id"]: (r["query"], r["pos"][0]) for r in read_rows(out2)}
    assert got == {
        "a.md": ("Installing the pump", "intro line\nStep one: open the valve."),
        "sub/b.txt": ("Cleaning the filter weekly", "Rinse it with water."),
    }
    # never silently overwritten
    assert cli(["data", "pairs", str(docs), "--from", "title", "--out", str(out2)]) == 2
    assert "--force" in capsys.readouterr().err


def test_crop_pairs_are_two_spans_of_the_same_document_within_the_lengths(tmp_path):
    corpus = write_corpus(tmp_path / "corpus.jsonl", n=4, titled=False)
    out = tmp_path / "crop.jsonl"
    args = ["data", "pairs", str(corpus), "--from", "crop", "--out", str(out)]
    args += ["--query-words", "4-6", "--passage-words", "10-20", "--per-document", "2"]
    assert cli(args) == 0
    rows = read_rows(out)
    assert len(rows) == 8
    for r in rows:
        doc_words = " ".join(f"w{r['doc_id'][1:]}_{j}" for j in range(60))
        assert r["query"] in doc_words and r["pos"][0] in doc_words
        assert 4 <= len(r["query"].split()) <= 6 and 10 <= len(r["pos"][0].split()) <= 20
    again = tmp_path / "again.jsonl"
    assert cli([*args[:6], str(again), *args[7:]]) == 0
    assert read_rows(again) == rows  # the seed makes it repeatable
    bad = [*args[:6], str(tmp_path / "x.jsonl"), "--query-words", "6-4"]
    assert cli(bad) == 2


def test_llm_pairs_through_an_openai_compatible_server(tmp_path, endpoint, capsys):
    corpus = write_corpus(tmp_path / "corpus.jsonl")
    out = tmp_path / "llm.jsonl"
    assert cli(llm_args(corpus, out, endpoint, "--questions", "2")) == 0
    rows = read_rows(out)
    assert len(rows) == 24
    by_doc = {}
    for r in rows:
        by_doc.setdefault(r["doc_id"], []).append(r["query"])
    assert sorted(by_doc) == sorted(f"d{i}" for i in range(12))
    assert by_doc["d3"] == ["What is Topic number 3?", "Where is Topic number 3 used?"]
    assert set(endpoint.auth) == {f"Bearer {KEY}"}
    # the key is read from the environment, never written
    for path in tmp_path.iterdir():
        assert KEY not in path.read_text()
    assert "about" in capsys.readouterr().err  # progress with an ETA


def test_llm_server_that_fails_and_recovers_mid_run_loses_and_duplicates_nothing(
    tmp_path, endpoint
):
    corpus = write_corpus(tmp_path / "corpus.jsonl")
    out = tmp_path / "llm.jsonl"
    endpoint.fail_from, endpoint.fail_count = 4, 5  # requests 4..8 answer 503, then it recovers
    assert cli(llm_args(corpus, out, endpoint)) == 0
    ids = [r["doc_id"] for r in read_rows(out)]
    assert sorted(ids) == sorted(f"d{i}" for i in range(12)) and len(ids) == 12
    assert len(endpoint.requests) == 12 + 5  # every failed request was retried once more


def test_llm_server_down_then_back_resumes_with_the_missing_documents_only(
    tmp_path, endpoint, capsys
):
    corpus = write_corpus(tmp_path / "corpus.jsonl")
    out = tmp_path / "llm.jsonl"
    endpoint.fail_from, endpoint.fail_count = 6, 10_000  # down for good after 5 answers
    assert cli(llm_args(corpus, out, endpoint, "--retries", "1", "--concurrency", "1")) == 1
    err = capsys.readouterr().out
    assert "got no answer after every retry" in err and "Run the same command again" in err
    first = read_rows(out)
    assert len(first) == 5
    with open(out, "a") as fh:  # a kill mid-write leaves a partial line
        fh.write('{"query": "half a ro')
    endpoint.fail_from, endpoint.requests = 0, []
    assert cli(llm_args(corpus, out, endpoint)) == 0
    rows = read_rows(out)
    assert rows[:5] == first
    assert sorted(r["doc_id"] for r in rows) == sorted(f"d{i}" for i in range(12))
    asked = sorted(endpoint.requests)
    assert asked == sorted(
        f"Topic number {i}" for i in range(12) if f"d{i}" not in {r["doc_id"] for r in first}
    )


def test_llm_resume_onto_another_input_is_refused_with_the_fix(tmp_path, endpoint, capsys):
    corpus = write_corpus(tmp_path / "corpus.jsonl", n=3)
    out = tmp_path / "llm.jsonl"
    assert cli(llm_args(corpus, out, endpoint)) == 0
    other = write_corpus(tmp_path / "other.jsonl", n=4)
    assert cli(llm_args(other, out, endpoint)) == 2
    err = capsys.readouterr().err
    assert "other documents or settings" in err and "--restart" in err and "new --out" in err
    assert len(read_rows(out)) == 3  # untouched
    assert cli(llm_args(other, out, endpoint, "--restart")) == 0
    assert sorted(r["doc_id"] for r in read_rows(out)) == ["d0", "d1", "d2", "d3"]


def test_llm_refused_key_stops_at_once_and_names_the_variable(tmp_path, endpoint, capsys):
    corpus = write_corpus(tmp_path / "corpus.jsonl")
    endpoint.refuse = 401
    assert cli(llm_args(corpus, tmp_path / "o.jsonl", endpoint)) == 1
    err = capsys.readouterr().err
    assert "HTTP 401" in err and "$STUDIO_TEST_LLM_KEY" in err and KEY not in err
    assert len(endpoint.requests) <= 6  # no retry storm over every document


def test_llm_dry_run_shows_the_prompts_and_sends_nothing(tmp_path, endpoint, capsys):
    corpus = write_corpus(tmp_path / "corpus.jsonl")
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("Ask {n} things about {title}: {text}")
    args = llm_args(corpus, tmp_path / "o.jsonl", endpoint, "--prompt-file", str(prompt))
    assert cli([*args, "--dry-run", "2"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("--- prompt") == 2 and "Ask 1 things about Topic number 1: w1_0" in printed
    assert endpoint.requests == [] and not (tmp_path / "o.jsonl").exists()
    prompt.write_text("Ask about {topic}")
    assert cli([*args, "--dry-run"]) == 2
    assert "placeholder" in capsys.readouterr().err


def test_a_corpus_line_that_is_not_a_document_is_named(tmp_path, capsys):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"_id": "a", "text": "fine"}\n{"title": "no id"}\n')
    assert cli(["data", "pairs", str(corpus), "--from", "title", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"{corpus}:2" in err and "`_id`" in err


def test_parse_questions_strips_numbering_and_keeps_n():
    answer = "1. What is it?\n- Why?\n\nQ3: How does it work?\n2) What is it?"
    assert llm_pairs.parse_questions(answer, 5) == ["What is it?", "Why?", "How does it work?"]
    assert pairs.split_title("## Heading ##\nbody") == ("Heading", "body")


def test_pairs_from_the_web_page_and_the_notebook_are_the_same_action(tmp_path):
    from conftest import ROOT
    from test_actions import QUICKSTART, page_call

    from studio.core import config as config_mod
    from studio.notebook import Studio
    from studio.webui.app import AppContext, build_app

    corpus = write_corpus(tmp_path / "corpus.jsonl", n=3)
    demo = build_app(AppContext(tmp_path / "runs", ROOT, initial=config_mod.load(QUICKSTART)))
    web_out = tmp_path / "web.jsonl"
    shown = page_call(
        demo, "do_pairs", pairs__corpus=str(corpus), pairs__out=str(web_out), pairs__method="title"
    )[None]
    assert "rows written" in shown and "3" in shown and "data mine" in shown
    studio = Studio(QUICKSTART, runs_dir=tmp_path / "runs", base_dir=ROOT)
    try:
        box = studio.pairs_box
        box.corpus.value, box.out.value = str(corpus), str(tmp_path / "nb.jsonl")
        box.button.click()
        assert "rows written: 3" in box.output.value, box.message.value
    finally:
        studio.close()
    assert read_rows(web_out) == read_rows(tmp_path / "nb.jsonl")


def test_llm_pairs_from_a_local_model_folder_without_an_endpoint(tmp_path):
    """`--from llm --model DIR` with no --base-url: a causal LM loaded with transformers (a tiny
    random Llama built here: its questions are noise, the path is what is tested)."""
    from tiny_llm import build_llama

    model = build_llama(tmp_path / "llm")
    corpus = write_corpus(tmp_path / "corpus.jsonl", n=3)
    out = tmp_path / "local.jsonl"
    args = ["data", "pairs", str(corpus), "--from", "llm", "--out", str(out), "--model", str(model)]
    assert cli([*args, "--concurrency", "2"]) == 0
    rows = read_rows(out)
    meta = json.loads((tmp_path / "local.jsonl.meta.json").read_text())
    assert meta["documents"] == 3 and meta["settings"]["base_url"] is None
    assert sorted(r["doc_id"] for r in rows) == ["d0", "d1", "d2"]  # one generation each
    assert all(r["query"] and r["pos"] and r["neg"] == [] for r in rows)


def test_adapt_and_data_pairs_read_the_llm_flags_the_same_way(tmp_path):
    """One set of --from llm flags on both commands (only the model's flag differs, since
    `adapt --model` is the model to fine-tune): a user's endpoint settings mean the same."""
    from studio.cli import llm_options
    from studio.cli.commands import build_parser

    prompt = tmp_path / "prompt.txt"
    prompt.write_text("Ask {n} questions about {title}: {text}", encoding="utf-8")
    common = ["--from", "llm", "--out", "o", "--base-url", "http://127.0.0.1:9/v1"]
    common += ["--api-key-env", "MY_KEY", "--prompt-file", str(prompt), "--questions", "2"]
    common += ["--concurrency", "3", "--retries", "1", "--timeout", "5", "--backoff", "0.5"]
    parser = build_parser()
    pairs = parser.parse_args(["data", "pairs", "docs", *common, "--model", "qwen"])
    adapt = parser.parse_args(["adapt", "docs", *common, "--llm-model", "qwen"])
    assert llm_options.settings(pairs) == llm_options.settings(adapt, "--llm-model")
    assert llm_options.settings(adapt, "--llm-model").prompt == prompt.read_text()
    assert adapt.model == "bundled:all-MiniLM-L6-v2"  # adapt's own --model is untouched

    done = subprocess.run(
        [sys.executable, "-m", "studio", "adapt", str(tmp_path), "--from", "llm", "--out", "o"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "--from llm needs --llm-model" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "o").exists()
