"""Keep tokens out of everything a run writes: `train.log`, the UI's log tail, notebook output.

FlagEmbedding's runner logs `Model parameters AbsEmbedderModelArguments(..., token=...)`, and
that `token` field's default factory reads `HF_TOKEN`, so a run started with `HF_TOKEN` in the
environment would write the token into `train.log` (and the log tail the UI shows). The fix
is to leave the field empty: the Hugging Face hub client reads `HF_TOKEN` itself when it is
given `token=None`, so downloads of gated models still authenticate. A token given as a flag
(`--token`, `--hub_token`) is moved into `HF_TOKEN` for this process for the same reason.
(transformers' own `TrainingArguments` repr already hides its `*_token` fields.)

As a second line, every log record created in the training process passes through
:func:`redact`, which replaces the value of each secret environment variable with `***`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, MutableMapping

SECRET_ENV = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "WANDB_API_KEY", "BGE_STUDIO_AUTH")
SECRET_FIELDS = ("token", "hub_token", "push_to_hub_token")
MASK = "***"
_MIN_LEN = 6  # shorter values would mask ordinary words


def secret_values(environ: MutableMapping[str, str] | None = None) -> list[str]:
    """The values of the secret environment variables, longest first (for nested matches)."""
    environ = os.environ if environ is None else environ
    values = {environ.get(name, "") for name in SECRET_ENV}
    for value in list(values):  # BGE_STUDIO_AUTH is USER:PASS: the password alone too
        if ":" in value:
            values.add(value.split(":", 1)[1])
    return sorted((v for v in values if len(v) >= _MIN_LEN), key=len, reverse=True)


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def clear_token_fields(*arg_objects, environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Empty each dataclass's token fields before anything logs them; return the fields cleared.

    A value the environment does not already hold becomes `HF_TOKEN` for this process, so the
    hub client still authenticates with it."""
    environ = os.environ if environ is None else environ
    cleared = []
    for obj in arg_objects:
        for name in SECRET_FIELDS:
            value = getattr(obj, name, None)
            if not value:
                continue
            if value != environ.get("HF_TOKEN"):
                environ["HF_TOKEN"] = value
            setattr(obj, name, None)
            cleared.append(name)
    return cleared


def redact_log_records(environ: MutableMapping[str, str] | None = None) -> None:
    """Mask secret values in every log record created from now on in this process."""
    secrets = secret_values(environ)
    if not secrets:
        return
    previous = logging.getLogRecordFactory()
    if getattr(previous, "_studio_redacts", False):
        return

    def factory(*args, **kwargs):
        record = previous(*args, **kwargs)
        message = record.getMessage()
        clean = redact(message, secrets)
        if clean != message:
            record.msg, record.args = clean, None
        return record

    factory._studio_redacts = True
    logging.setLogRecordFactory(factory)


def protect_run(*arg_objects) -> None:
    """The one call the training entry point makes after parsing its flags."""
    clear_token_fields(*arg_objects)
    redact_log_records()
