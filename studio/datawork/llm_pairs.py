"""Questions written by a language model for each document: ``data pairs --from llm``.

The model sits behind an OpenAI-compatible endpoint the user names (``--base-url``,
``--model``; the key is read from an environment variable and never written anywhere), or is a
local causal LM loaded with transformers (``--model DIR`` without ``--base-url``).

Thousands of documents take hours and endpoints fail, so the run is built to be stopped and
resumed: requests go out ``concurrency`` at a time with retries and exponential backoff
(honouring ``Retry-After``), each document's rows are appended to the output as soon as they
come back (one write per document, so a kill leaves at most a partial last line, which resume
cuts off), and a sidecar ``OUT.meta.json`` records a fingerprint of the input documents and the
settings. A rerun with the same input resumes after the documents already written, never
writing one twice; a rerun with another input or prompt is refused with the fix.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path

from studio.datawork.pairs import Document, PairsResult, needs_negatives, read_documents, row
from studio.facts.problems import WARNING, Problem

DEFAULT_PROMPT = (
    "Write {n} different questions that someone might type into a search engine and that the "
    "passage below answers. Write each question on its own line, without numbering or any "
    "other text.\n\nTitle: {title}\n\nPassage:\n{text}"
)
# The HTTP answers worth another try: rate limits, server errors, gateways, timeouts.
RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
MAX_BACKOFF_S = 30.0

Progress = Callable[[int, int, float | None], None]


class EndpointError(RuntimeError):
    """The endpoint refused the request in a way another try cannot fix (401, 404, 400...)."""


class ResumeMismatch(ValueError):
    """The output belongs to another input or other settings."""


@dataclass(frozen=True)
class LLMSettings:
    model: str
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    prompt: str = DEFAULT_PROMPT
    questions_per_doc: int = 1
    concurrency: int = 4
    retries: int = 5
    timeout_s: float = 60.0
    backoff_s: float = 1.0
    max_passage_chars: int = 4000
    temperature: float = 0.7
    max_tokens: int = 256

    def __post_init__(self) -> None:
        for name in ("questions_per_doc", "concurrency", "max_passage_chars", "max_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} {getattr(self, name)}: want >= 1")
        if self.retries < 0 or self.timeout_s <= 0 or self.backoff_s < 0:
            raise ValueError("--retries >= 0, --timeout > 0 and --backoff >= 0, please")
        try:
            self.prompt.format(n=1, title="t", text="x")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"the prompt has a placeholder other than {{n}}, {{title}} and {{text}} ({exc}); "
                "double literal braces as {{ and }}"
            ) from None

    def fingerprint_fields(self) -> dict:
        """What decides the rows: not the key, the concurrency or the retry policy."""
        keep = ("model", "base_url", "prompt", "questions_per_doc", "max_passage_chars")
        keep += ("temperature", "max_tokens")
        return {k: v for k, v in asdict(self).items() if k in keep}


def prompt_for(doc: Document, settings: LLMSettings) -> str:
    return settings.prompt.format(
        n=settings.questions_per_doc,
        title=doc.title or "(none)",
        text=doc.text[: settings.max_passage_chars],
    )


_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)]|q\d*[:.)]|question\s*\d*[:.)])\s*", re.I)


def parse_questions(answer: str, n: int) -> list[str]:
    """Up to ``n`` questions from a model's answer: one a line, numbering and bullets removed."""
    out = []
    for line in answer.splitlines():
        text = _BULLET.sub("", line).strip().strip('"').strip()
        if len(text) >= 3 and text not in out:
            out.append(text)
    return out[:n]


def fingerprint(docs: list[Document], settings: LLMSettings) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps(settings.fingerprint_fields(), sort_keys=True).encode())
    for doc in docs:
        digest.update(json.dumps([doc.doc_id, doc.title, doc.text]).encode())
    return digest.hexdigest()


class HTTPClient:
    """POST /chat/completions of an OpenAI-compatible server, with retries and backoff."""

    def __init__(self, settings: LLMSettings, sleep: Callable[[float], None] = time.sleep):
        self.settings = settings
        self.url = settings.base_url.rstrip("/") + "/chat/completions"
        self._key = os.environ.get(settings.api_key_env) or None
        self.sleep = sleep
        self.retried = 0
        self._lock = threading.Lock()

    def complete(self, prompt: str) -> str:
        body = json.dumps(
            {
                "model": self.settings.model,
                "messages": [{"role": "user", "content": prompt}],
                "temperature": self.settings.temperature,
                "max_tokens": self.settings.max_tokens,
            }
        ).encode()
        headers = {"Content-Type": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        last = ""
        for attempt in range(self.settings.retries + 1):
            if attempt:
                with self._lock:
                    self.retried += 1
            request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
            wait_s = self.settings.backoff_s * 2**attempt
            try:
                with urllib.request.urlopen(request, timeout=self.settings.timeout_s) as resp:
                    payload = json.loads(resp.read())
                return payload["choices"][0]["message"]["content"] or ""
            except urllib.error.HTTPError as exc:
                if exc.code not in RETRY_STATUS:
                    raise EndpointError(self._refusal(exc)) from None
                last = f"HTTP {exc.code}"
                retry_after = exc.headers.get("Retry-After") if exc.headers else None
                if retry_after and retry_after.replace(".", "", 1).isdigit():
                    wait_s = max(wait_s, float(retry_after))
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
                last = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
            except (ValueError, KeyError, IndexError, TypeError):
                last = "an answer that is not an OpenAI chat completion"
            if attempt < self.settings.retries:
                self.sleep(min(wait_s, MAX_BACKOFF_S))
        raise ConnectionError(f"{self.url}: {last} after {self.settings.retries + 1} tries")

    def _refusal(self, exc: urllib.error.HTTPError) -> str:
        hint = {
            401: f"the endpoint wants a key: set ${self.settings.api_key_env} (it is never saved)",
            403: f"the key in ${self.settings.api_key_env} may not use this model",
            404: f"no such endpoint or model: check --base-url ({self.settings.base_url}) "
            f"and --model ({self.settings.model})",
        }.get(exc.code, "check --base-url, --model and the prompt")
        return f"{self.url} answered HTTP {exc.code}: {hint}"


class LocalClient:
    """A causal LM from a folder, through transformers, for machines without an endpoint."""

    def __init__(self, settings: LLMSettings):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.settings = settings
        self.tokenizer = AutoTokenizer.from_pretrained(settings.model)
        self.model = AutoModelForCausalLM.from_pretrained(settings.model)
        self.model.eval()
        self.retried = 0
        self._lock = threading.Lock()  # one generate at a time: the model is shared

    def complete(self, prompt: str) -> str:
        import torch

        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            text = tok.apply_chat_template(
                [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
            )
        else:
            text = prompt
        inputs = tok(text, return_tensors="pt", truncation=True, max_length=1024)
        with self._lock, torch.no_grad():
            out = self.model.generate(
                **inputs,
                max_new_tokens=self.settings.max_tokens,
                do_sample=self.settings.temperature > 0,
                temperature=max(self.settings.temperature, 1e-3),
                pad_token_id=tok.pad_token_id or tok.eos_token_id or 0,
            )
        return tok.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)


def make_client(settings: LLMSettings):
    if settings.base_url:
        return HTTPClient(settings)
    if not Path(settings.model).is_dir():
        raise ValueError(
            f"--model {settings.model!r} is not a folder: give --base-url for an endpoint "
            "(e.g. http://localhost:8000/v1), or --model DIR for a local model"
        )
    return LocalClient(settings)


def _meta_path(out_path: Path) -> Path:
    return out_path.with_name(out_path.name + ".meta.json")


def _written_ids(out_path: Path) -> set[str]:
    """Document ids already in the output; a partial last line (a kill mid-write) is cut off."""
    if not out_path.exists():
        return set()
    data = out_path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        with open(out_path, "r+b") as handle:
            handle.truncate(end)
    ids = set()
    for raw in data[:end].splitlines():
        try:
            ids.add(str(json.loads(raw)["doc_id"]))
        except (ValueError, KeyError, TypeError):
            continue
    return ids


def check_resume(out_path: Path, finger: str, restart: bool) -> set[str]:
    """The ids to skip; refuses an output made from another input or other settings."""
    meta = _meta_path(out_path)
    if restart:
        out_path.unlink(missing_ok=True)
        meta.unlink(missing_ok=True)
        return set()
    if not out_path.exists():
        return set()
    recorded = None
    if meta.is_file():
        try:
            recorded = json.loads(meta.read_text()).get("fingerprint")
        except ValueError:
            recorded = None
    if recorded != finger:
        why = (
            "was made from other documents or settings"
            if recorded
            else "has no record of its input"
        )
        raise ResumeMismatch(
            f"{out_path} {why} ({meta.name}); resuming would mix two inputs. "
            "Fix: pass --restart to start over, or give a new --out"
        )
    return _written_ids(out_path)


def dry_run(corpus: str | Path, settings: LLMSettings, count: int = 3) -> list[str]:
    """The first ``count`` prompts exactly as they would be sent; nothing is sent."""
    prompts = []
    for doc in read_documents(corpus):
        prompts.append(prompt_for(doc, settings))
        if len(prompts) >= count:
            break
    return prompts


@dataclass
class _Clock:
    started: float = field(default_factory=time.perf_counter)

    def eta(self, done: int, total: int) -> float | None:
        if not done:
            return None
        return (time.perf_counter() - self.started) / done * (total - done)


def llm_pairs(
    corpus: str | Path,
    out_path: str | Path,
    settings: LLMSettings,
    *,
    restart: bool = False,
    limit: int | None = None,
    client=None,
    progress: Progress | None = None,
) -> PairsResult:
    """Questions for every document of ``corpus``, appended to ``out_path`` as they come back."""
    out_path = Path(out_path)
    docs = list(read_documents(corpus))
    if limit is not None:
        docs = docs[:limit]
    finger = fingerprint(docs, settings)
    done_ids = check_resume(out_path, finger, restart)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    _meta_path(out_path).write_text(
        json.dumps(
            {
                "fingerprint": finger,
                "corpus": str(corpus),
                "documents": len(docs),
                "settings": settings.fingerprint_fields(),
            },
            indent=1,
        )
    )
    client = client or make_client(settings)
    result = PairsResult(out_path, "llm", documents=len(docs), resumed=len(done_ids))
    todo = [d for d in docs if d.doc_id not in done_ids]
    clock, report = _Clock(), progress or (lambda done, total, eta: None)
    finished = len(done_ids)
    report(finished, len(docs), None)
    failures: list[str] = []
    with (
        open(out_path, "a", encoding="utf-8") as handle,
        ThreadPoolExecutor(max_workers=settings.concurrency) as pool,
    ):
        pending: dict[Future, Document] = {}
        queue = iter(todo)
        fatal: EndpointError | None = None

        def refill() -> None:
            while fatal is None and len(pending) < settings.concurrency * 2:
                doc = next(queue, None)
                if doc is None:
                    return
                pending[pool.submit(client.complete, prompt_for(doc, settings))] = doc

        refill()
        while pending:
            ready, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in ready:
                doc = pending.pop(future)
                try:
                    questions = parse_questions(future.result(), settings.questions_per_doc)
                except EndpointError as exc:
                    fatal = fatal or exc
                    continue
                except ConnectionError as exc:
                    result.failed += 1
                    failures.append(f"{doc.doc_id}: {exc}")
                    continue
                if not questions:
                    result.skipped += 1
                    continue
                lines = [
                    json.dumps(row(q, doc.text, doc.doc_id), ensure_ascii=False) for q in questions
                ]
                handle.write("".join(line + "\n" for line in lines))
                handle.flush()
                result.rows_written += len(lines)
                finished += 1
                report(finished, len(docs), clock.eta(finished - len(done_ids), len(todo)))
            refill()
        if fatal is not None:
            raise fatal
    result.seconds = time.perf_counter() - clock.started
    if failures:
        result.problems.append(
            Problem(
                WARNING,
                f"{len(failures):,} documents got no answer after every retry "
                f"(first: {failures[0]}).",
                "Run the same command again: it resumes with the documents still missing.",
                file=str(corpus),
                code="pairs_llm_failed",
            )
        )
    if result.skipped:
        result.problems.append(
            Problem(
                WARNING,
                f"{result.skipped:,} answers held no question.",
                "Look at the prompt (`--dry-run` shows it) and the model; rerun to retry them.",
                file=str(corpus),
                code="pairs_llm_empty",
            )
        )
    result.problems.append(needs_negatives(out_path))
    return result
