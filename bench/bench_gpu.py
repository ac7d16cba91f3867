"""The studio against FlagEmbedding's own command.sh on a GPU: speed, losses and memory.

For each case (fp16 / bf16 × DeepSpeed off / ZeRO-1 / ZeRO-2) the same config is trained by

* **A, the studio**: ``runs.start`` (pre-flight, supervisor, its entry point, metrics callback,
  the post-training export), with the memory probe on (``torch.cuda.max_memory_allocated``);
* **B, FlagEmbedding alone**: the ``command.sh`` the studio writes into a run folder, run with
  ``bash`` from a scratch folder, with the studio off ``PYTHONPATH``;

in alternating pairs (``A B B A`` by default), so that warm-up, caches and clock changes fall on
both sides alike. Each run is sampled by a thread polling ``nvidia-smi`` (memory.used, 0.2 s).
Models are random-init, built from a config (the GPU machine has no network; memory and speed
do not depend on the weights' values); every text is longer than its max length, so each batch
is the estimate's worst case. Printed per case, and written with ``--json``:

* ``step_time_ratio``: the studio's steady time per step (steps 2..N, from each side's logged
  step times) over FlagEmbedding's;
* ``first_step_ratio``: launch to the first logged step, studio over FlagEmbedding (the studio's
  includes its pre-flight);
* ``loss_max_abs_diff``: the largest |loss difference| at the same step between paired A and B
  runs, next to ``loss_noise_same_side`` (A against A, B against B: the GPU's nondeterminism);
* ``estimate_over_max_allocated``: the studio's estimate (``peak_bytes``) over the studio run's
  ``max_memory_allocated``;
* ``smi_estimate_over_smi_peak`` / ``..._raw``: the estimate of what nvidia-smi shows
  (``nvidia_smi_bytes``: allocated + the allocator's reserve + the CUDA context) over the
  nvidia-smi peak above the idle baseline, of the studio's and of FlagEmbedding's runs.

``--dry`` does the same on CPU, tiny: fp32, a 2-layer model built from the bundled MiniLM's
config, 3 steps, DeepSpeed off (``--cases`` adds ZeRO-1), for the tests; the memory ratios are
then null (no GPU). A case that would pass ``--budget-s`` is skipped and listed as such.

    python bench/bench_gpu.py [--dry] [--json OUT] [--md OUT] [--cases fp16-off,bf16-zero1]
        [--order ABBA] [--steps 15] [--model-src DIR] [--budget-s 420]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_memory_estimate import long_data  # noqa: E402

from studio.checks import memory  # noqa: E402
from studio.core import config  # noqa: E402
from studio.facts.runfolder import RunFolder  # noqa: E402
from studio.training import runs  # noqa: E402
from studio.training.runlog import read_metrics, step_records  # noqa: E402

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
)
GPU_CASES = ("fp16-off", "bf16-off", "fp16-zero1", "bf16-zero1", "fp16-zero2", "bf16-zero2")
DRY_CASES = ("fp32-off",)
# GPU: the recorded H200 check's MiniLM-size shape (batch 64, group 8, q 64, p 256).
GPU_SHAPE = {"batch": 64, "group": 8, "q": 64, "p": 256}
DRY_SHAPE = {"batch": 2, "group": 2, "q": 16, "p": 32}
RUN_TIMEOUT_S = 600
_LOSS_DICT = re.compile(r"\{'loss': [^{}]*\}")
_NUM = r"(-?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|nan|inf))"


# --------------------------------------------------------------------------- models, data, configs


def build_model(src: Path, out: Path, tiny: bool) -> Path:
    """A random-init BERT from ``src``'s config (tiny: 2 layers, hidden 64) and its tokenizer."""
    import torch
    from transformers import BertConfig, BertModel

    cfg = BertConfig.from_pretrained(src)
    if tiny:
        cfg.update(
            {
                "num_hidden_layers": 2,
                "hidden_size": 64,
                "num_attention_heads": 2,
                "intermediate_size": 128,
            }
        )
    torch.manual_seed(0)
    out.mkdir(parents=True, exist_ok=True)
    BertModel(cfg).save_pretrained(out, safe_serialization=True)
    for name in TOKENIZER_FILES:
        if (src / name).is_file():
            shutil.copy(src / name, out / name)
    return out


def case_config(
    case: str, model: Path, data: Path, out: Path, steps: int, shape: dict
) -> config.StudioConfig:
    precision, ds = case.split("-")
    args = {
        "model_name_or_path": str(model),
        "train_data": [str(data)],
        "sentence_pooling_method": "mean",
        "per_device_train_batch_size": shape["batch"],
        "train_group_size": shape["group"],
        "query_max_len": shape["q"],
        "passage_max_len": shape["p"],
        "max_steps": steps,
        "logging_steps": 1,
        "save_steps": 100_000,
        "learning_rate": 1.0e-5,
        "warmup_ratio": 0.0,
        "seed": 42,
        "output_dir": str(out),
        "report_to": "none",
        "dataloader_num_workers": 0,
    }
    if precision in ("fp16", "bf16"):
        args[precision] = True
    deepspeed = (
        None if ds == "off" else config.DeepSpeedSettings(stage=int(ds.removeprefix("zero")))
    )
    # The bench compares speed and memory: an fp16 step the loss scaler skips must not stop A.
    return config.StudioConfig(args, config.TorchrunSettings(), deepspeed, {"ignore_nan": True})


# --------------------------------------------------------------------------- nvidia-smi


def smi_used_mib() -> float | None:
    """memory.used of GPU 0 in MiB, or None without nvidia-smi."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
        return float(out.split()[0])
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        return None


def smi_device() -> tuple[str, int] | None:
    """GPU 0's name and memory from nvidia-smi, for the estimate: asking torch would open a CUDA
    context in this process, which nvidia-smi would count in the runs' peaks."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.splitlines()[0]
        name, total = out.rsplit(",", 1)
        return f"GPU {name.strip()}", int(float(total) * 1024 * 1024)
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        return None


class SmiPoller:
    """Polls nvidia-smi in a thread while a run lasts; ``peak_bytes`` is above the baseline."""

    def __init__(self, period_s: float = 0.2):
        self.period_s = period_s
        self.baseline = smi_used_mib()
        self.peak: float | None = None
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            used = smi_used_mib()
            if used is not None:
                self.samples += 1
                self.peak = used if self.peak is None else max(self.peak, used)
            self._stop.wait(self.period_s)

    def __enter__(self) -> SmiPoller:
        if self.baseline is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(15)

    @property
    def peak_bytes(self) -> int | None:
        if self.peak is None:
            return None
        return int((self.peak - (self.baseline or 0.0)) * 1024 * 1024)


# --------------------------------------------------------------------------- one run of each side


def steady_step_s(times: list[float]) -> float | None:
    """Mean seconds per step from the second logged step on (the first carries warm-up)."""
    if len(times) < 3:
        return None
    return (times[-1] - times[1]) / (len(times) - 2)


def run_studio(cfg: config.StudioConfig, work: Path, env: dict) -> dict:
    probe = work / "probe.json"
    child_env = {**env, "STUDIO_MEMORY_PROBE": str(probe)}
    with SmiPoller() as smi:
        start = time.time()
        run_dir = runs.start(cfg, work / "runs", ROOT, env=child_env)
        status = runs.wait(run_dir, RUN_TIMEOUT_S, poll_s=0.1)
        wall = time.time() - start
    folder = RunFolder(run_dir)
    steps = step_records(read_metrics(folder.metrics))
    times = [r["time"] for r in steps]
    record = json.loads(probe.read_text()) if probe.is_file() else {}
    result = {
        "side": "studio",
        "state": status.get("state"),
        "losses": [r.get("loss") for r in steps],
        "first_step_s": times[0] - start if times else None,
        "steady_step_s": steady_step_s(times),
        "wall_s": wall,
        "max_allocated": record.get("cuda_max_allocated"),
        "smi_peak": smi.peak_bytes,
        "smi_samples": smi.samples,
        "run_dir": str(run_dir),
    }
    if status.get("state") != "succeeded":
        result["error"] = f"{status.get('error')}\n{runlog_tail(folder.log)}"
    return result


def runlog_tail(path: Path, n: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


def raw_env(env: dict, bin_dir: Path) -> dict:
    """The environment of FlagEmbedding alone: no studio on PYTHONPATH, ``torchrun`` of this
    interpreter first on PATH (whatever else PATH holds)."""
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    kept = [p for p in paths if not (Path(p) / "studio" / "__init__.py").is_file()]
    out = {**env, "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", "PYTHONUNBUFFERED": "1"}
    out["PYTHONPATH"] = os.pathsep.join(kept)
    return out


def torchrun_shim(bin_dir: Path) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    shim = bin_dir / "torchrun"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m torch.distributed.run "$@"\n')
    shim.chmod(0o755)


def parse_loss(blob: str) -> float | None:
    match = re.search(r"'loss': " + _NUM, blob)
    return float(match.group(1)) if match else None


def run_raw(cfg: config.StudioConfig, work: Path, env: dict) -> dict:
    """``bash command.sh`` of a run folder the studio prepared (not launched) for this config;
    each ``{'loss': ...}`` line is timed as it arrives on the pipe."""
    run_dir = runs.prepare(cfg, work / "prepared", ROOT)
    script = RunFolder(run_dir).command
    cwd = work / "cwd"
    cwd.mkdir(parents=True, exist_ok=True)
    losses: list[float | None] = []
    times: list[float] = []
    log = bytearray()
    with SmiPoller() as smi:
        start = time.time()
        proc = subprocess.Popen(
            ["bash", str(script)],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        pending = b""
        assert proc.stdout is not None
        while chunk := proc.stdout.read1(65536):
            now = time.time()
            log += chunk
            pending += chunk
            *lines, pending = re.split(rb"[\r\n]", pending)
            for line in lines:
                for blob in _LOSS_DICT.findall(line.decode(errors="replace")):
                    losses.append(parse_loss(blob))
                    times.append(now)
        code = proc.wait(RUN_TIMEOUT_S)
        wall = time.time() - start
    (work / "raw.log").write_bytes(bytes(log))
    result = {
        "side": "flagembedding",
        "state": "succeeded" if code == 0 else f"exit {code}",
        "losses": losses,
        "first_step_s": times[0] - start if times else None,
        "steady_step_s": steady_step_s(times),
        "wall_s": wall,
        "max_allocated": None,  # FlagEmbedding alone has no probe
        "smi_peak": smi.peak_bytes,
        "smi_samples": smi.samples,
        "script": str(script),
    }
    if code != 0:
        result["error"] = bytes(log[-3000:]).decode(errors="replace")
    return result


# --------------------------------------------------------------------------- a case, the table


def _ratio(a, b) -> float | None:
    return round(a / b, 4) if a and b else None


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.mean(values) if values else None


def _max(values) -> float | None:
    values = [v for v in values if v is not None]
    return max(values) if values else None


def max_abs_diff(a: list, b: list) -> float | None:
    pairs = [(x, y) for x, y in zip(a, b, strict=False) if x is not None and y is not None]
    return round(max(abs(x - y) for x, y in pairs), 6) if pairs else None


def summarize_case(case: str, runs_: list[dict], est: memory.Estimate | None) -> dict:
    studio = [r for r in runs_ if r["side"] == "studio"]
    raw = [r for r in runs_ if r["side"] == "flagembedding"]
    pair_diffs = [max_abs_diff(a["losses"], b["losses"]) for a, b in zip(studio, raw, strict=False)]
    noise = [max_abs_diff(s[0]["losses"], s[1]["losses"]) for s in (studio, raw) if len(s) > 1]
    max_alloc = _max(r["max_allocated"] for r in studio)
    smi_studio = _max(r["smi_peak"] for r in studio)
    smi_raw = _max(r["smi_peak"] for r in raw)
    est_peak = est.peak_bytes if est else None
    est_smi = getattr(est, "nvidia_smi_bytes", None) if est else None
    return {
        "case": case,
        "order": "".join("A" if r["side"] == "studio" else "B" for r in runs_),
        "ok": all(r["state"] == "succeeded" for r in runs_),
        "steps": [len(r["losses"]) for r in runs_],
        "steady_step_s_studio": _mean(r["steady_step_s"] for r in studio),
        "steady_step_s_flagembedding": _mean(r["steady_step_s"] for r in raw),
        "step_time_ratio": _ratio(
            _mean(r["steady_step_s"] for r in studio), _mean(r["steady_step_s"] for r in raw)
        ),
        "first_step_s_studio": _mean(r["first_step_s"] for r in studio),
        "first_step_s_flagembedding": _mean(r["first_step_s"] for r in raw),
        "first_step_ratio": _ratio(
            _mean(r["first_step_s"] for r in studio), _mean(r["first_step_s"] for r in raw)
        ),
        "loss_max_abs_diff": _max(pair_diffs),
        "loss_noise_same_side": _max(noise),
        "estimate_bytes": est_peak,
        "estimate_nvidia_smi_bytes": est_smi,
        "max_allocated_bytes": max_alloc,
        "nvidia_smi_peak_bytes": smi_studio,
        "nvidia_smi_peak_raw_bytes": smi_raw,
        "estimate_over_max_allocated": _ratio(est_peak, max_alloc),
        "smi_estimate_over_smi_peak": _ratio(est_smi, smi_studio),
        "smi_estimate_over_smi_peak_raw": _ratio(est_smi, smi_raw),
        "runs": runs_,
    }


def _f(value, fmt: str = "{:.3f}") -> str:
    return "-" if value is None else fmt.format(value)


def _gb(value) -> str:
    return "-" if value is None else f"{value / 1e9:.2f}"


def table(cases: list[dict]) -> str:
    head = (
        "| case | order | ok | step s A/B | step ratio | 1st step s A/B | 1st ratio | loss max diff "
        "(noise) | est GB | max alloc GB | est/alloc | est smi GB | smi A/B GB | est smi/smi A | "
        "est smi/smi B |"
    )
    lines = [head, "|" + "---|" * 15]
    for c in cases:
        if c.get("skipped"):
            lines.append(f"| {c['case']} | skipped: {c['skipped']} |" + " |" * 13)
            continue
        lines.append(
            f"| {c['case']} | {c['order']} | {'yes' if c['ok'] else 'NO'} | "
            f"{_f(c['steady_step_s_studio'])}/{_f(c['steady_step_s_flagembedding'])} | "
            f"{_f(c['step_time_ratio'])} | "
            f"{_f(c['first_step_s_studio'], '{:.1f}')}/{_f(c['first_step_s_flagembedding'], '{:.1f}')} | "
            f"{_f(c['first_step_ratio'])} | "
            f"{_f(c['loss_max_abs_diff'], '{:.4f}')} ({_f(c['loss_noise_same_side'], '{:.4f}')}) | "
            f"{_gb(c['estimate_bytes'])} | {_gb(c['max_allocated_bytes'])} | "
            f"{_f(c['estimate_over_max_allocated'])} | {_gb(c['estimate_nvidia_smi_bytes'])} | "
            f"{_gb(c['nvidia_smi_peak_bytes'])}/{_gb(c['nvidia_smi_peak_raw_bytes'])} | "
            f"{_f(c['smi_estimate_over_smi_peak'])} | {_f(c['smi_estimate_over_smi_peak_raw'])} |"
        )
    return "\n".join(lines)


def environment() -> dict:
    import torch

    info = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": sys.version.split()[0],
    }
    device = smi_device()  # not torch: no CUDA context in this process
    info["gpu"] = device and device[0]
    from importlib import metadata

    for name in ("transformers", "FlagEmbedding", "deepspeed"):
        try:
            info[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            info[name] = None
    return info


def write(args, results: list[dict], steps: int, shape: dict, order: str) -> str:
    """The table (returned, with the environment) into ``--md``, everything into ``--json``."""
    env_info = environment()
    text = f"{json.dumps(env_info)}\n\nsteps {steps}, shape {shape}, order {order}\n\n"
    text += table(results) + "\n"
    if args.md:
        Path(args.md).write_text(text)
    if args.json:
        doc = {
            "environment": env_info,
            "steps": steps,
            "shape": shape,
            "order": order,
            "cases": results,
        }
        Path(args.json).write_text(json.dumps(doc, indent=2, default=str))
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry", action="store_true", help="tiny, on CPU (fp32), for the tests")
    parser.add_argument("--cases", help="comma-separated, e.g. fp16-off,bf16-zero1")
    parser.add_argument("--order", help="A = studio, B = FlagEmbedding (default ABBA)")
    parser.add_argument("--steps", type=int, help="steps per run (default 15; --dry 3)")
    parser.add_argument(
        "--model-src",
        help="a folder with a BERT config.json and tokenizer (default: the bundled MiniLM)",
    )
    parser.add_argument(
        "--budget-s",
        type=float,
        default=None,
        help="skip the cases that would end past this many seconds",
    )
    parser.add_argument("--json", help="write the ratios (and every run) here")
    parser.add_argument("--md", help="write the printed table here")
    args = parser.parse_args()
    order = (args.order or "ABBA").upper()
    if not order or set(order) - {"A", "B"}:
        parser.error("--order takes A (studio) and B (FlagEmbedding), e.g. ABBA")
    cases = args.cases.split(",") if args.cases else list(DRY_CASES if args.dry else GPU_CASES)
    for case in cases:
        if not re.fullmatch(r"(fp32|fp16|bf16)-(off|zero1|zero2)", case):
            parser.error(f"--cases: {case!r} is not PRECISION-DS, e.g. fp16-off or bf16-zero1")
    steps = args.steps or (3 if args.dry else 15)
    shape = DRY_SHAPE if args.dry else GPU_SHAPE
    src = Path(args.model_src) if args.model_src else config.bundled_model_path()
    if src is None or not (src / "config.json").is_file():
        raise SystemExit(f"--model-src {src}: no config.json (give a BERT model folder)")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    t0 = time.time()
    results: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-gpu-") as tmp:
        work = Path(tmp)
        model = build_model(src, work / "model", tiny=args.dry)
        data = long_data(work / "long.jsonl", rows=max(64, shape["batch"] * 4))
        torchrun_shim(work / "bin")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
        renv = raw_env(env, work / "bin")
        per_case = None
        for case in cases:
            spent = time.time() - t0
            if args.budget_s and per_case and spent + 1.15 * per_case > args.budget_s:
                results.append({"case": case, "skipped": f"budget ({spent:.0f}s spent)"})
                print(f"{case}: skipped, {spent:.0f}s spent of {args.budget_s:.0f}s", flush=True)
                continue
            case_start = time.time()
            cfg = case_config(case, model, data, work / case / "out", steps, shape)
            try:
                est = memory.estimate(cfg, ROOT, device=smi_device())
            except Exception as exc:  # noqa: BLE001 - the runs still say something
                print(f"{case}: no estimate ({exc})", flush=True)
                est = None
            runs_ = []
            for i, side in enumerate(order):
                where = work / case / f"{i}{side}"
                out_cfg = cfg.with_args(output_dir=str(where / "out"))
                r = (
                    run_studio(out_cfg, where, env)
                    if side == "A"
                    else run_raw(out_cfg, where, renv)
                )
                print(
                    f"{case} {side}: {r['state']}, {len(r['losses'])} steps, first step "
                    f"{_f(r['first_step_s'], '{:.1f}')} s, step {_f(r['steady_step_s'])} s, "
                    f"max alloc {_gb(r['max_allocated'])} GB, smi {_gb(r['smi_peak'])} GB",
                    flush=True,
                )
                if r.get("error"):
                    print(r["error"][-1500:], flush=True)
                runs_.append(r)
            results.append(summarize_case(case, runs_, est))
            per_case = time.time() - case_start
            write(args, results, steps, shape, order)  # so far: a killed bench keeps its cases
    print(write(args, results, steps, shape, order), flush=True)
    done = [c for c in results if not c.get("skipped")]
    return 0 if done and all(c["ok"] for c in done) else 1


if __name__ == "__main__":
    sys.exit(main())
