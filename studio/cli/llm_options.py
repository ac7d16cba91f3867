"""The `--from llm` options, shared by `data pairs` and `adapt`: one set of flags, one reading.

Both commands talk to the same endpoint through :class:`studio.datawork.llm_pairs.LLMSettings`;
the flags live here so that a user who learned them on one command finds them on the other.
Only the model's flag differs (`data pairs --model`, `adapt --llm-model`: there `--model` is the
model to fine-tune).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add(parser: argparse.ArgumentParser, model_flag: str = "--model") -> None:
    """The llm argument group; the model lands in ``args.llm_model`` whatever its flag."""
    g = parser.add_argument_group("llm")
    g.add_argument(
        "--base-url", help="an OpenAI-compatible endpoint, e.g. http://localhost:8000/v1"
    )
    g.add_argument(
        model_flag,
        dest="llm_model",
        help="the LLM's name at --base-url, or a local model folder",
    )
    g.add_argument(
        "--api-key-env",
        default="OPENAI_API_KEY",
        help="the environment variable holding the key (read, never written)",
    )
    g.add_argument("--prompt-file", help="your prompt; placeholders {n}, {title}, {text}")
    g.add_argument("--questions", type=int, default=1, help="questions per document")
    g.add_argument("--concurrency", type=int, default=4, help="requests at once")
    g.add_argument("--retries", type=int, default=5, help="tries after the first, with backoff")
    g.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    g.add_argument("--backoff", type=float, default=1.0, help="first wait in seconds, then x2")


def settings(args: argparse.Namespace, model_flag: str = "--model"):
    """The LLMSettings the flags ask for; ValueError naming the flag when the model is missing
    (and OSError when --prompt-file cannot be read)."""
    from studio.datawork import llm_pairs

    if not args.llm_model:
        raise ValueError(
            f"--from llm needs {model_flag} (a model name at --base-url, or a local model folder)"
        )
    prompt = llm_pairs.DEFAULT_PROMPT
    if args.prompt_file:
        prompt = Path(args.prompt_file).read_text(encoding="utf-8")
    return llm_pairs.LLMSettings(
        model=args.llm_model,
        base_url=args.base_url or None,
        api_key_env=args.api_key_env,
        prompt=prompt,
        questions_per_doc=args.questions,
        concurrency=args.concurrency,
        retries=args.retries,
        timeout_s=args.timeout,
        backoff_s=args.backoff,
    )
