#!/usr/bin/env bash
# bench/bench_gpu.py on an offline GPU machine (as the device machine of this workplace is).
#
#   KIT/run_bench.sh [bench_gpu.py options]
#
# Copy it into a folder KIT that also holds: project/ (`git archive HEAD | tar -x -C KIT/project`),
# model_src/ (a BERT config.json + tokenizer: the bundled MiniLM-L6's) and whl/, made where pip
# works with `pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp
# --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform any -d whl`
# transformers==4.57.6 huggingface_hub==0.36.2 tokenizers==0.22.2 sentence-transformers==5.7.0
# FlagEmbedding==1.4.2 datasets==5.0.1 dill==0.4.1 multiprocess==0.70.19 pydantic==2.14.4
# pydantic_core==2.50.5 annotated-types typing-inspection hjson pytrec_eval-terrier peft fsspec
# typing_extensions (torch, numpy, pyarrow... come with the GPU image), plus
# `pip download --no-deps --no-binary=:all: -d whl deepspeed==0.19.8`. The wheels go to /tmp/site, DeepSpeed
# is built from its sdist without ops (DS_BUILD_OPS=0: the studio's default DeepSpeed config uses
# torch's AdamW). Results: $OUT/bench_gpu.json, $OUT/bench_gpu.md, $OUT/log.txt.
# GPU_KIT_DRY=1: no install, GPU_KIT_PYTHON (default python3), --dry: a CPU rehearsal.
set -u
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
export HF_HUB_DISABLE_TELEMETRY=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
KIT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="${OUT:-/tmp/bench-gpu-out}"
SITE="${GPU_KIT_SITE:-/tmp/site}"
PY="${GPU_KIT_PYTHON:-python3}"
export HF_HOME=/tmp/bench-gpu-hf BGE_STUDIO_CACHE=/tmp/bench-gpu-cache
mkdir -p "$OUT"

main() {
  date -Is
  nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv 2>&1 || true
  "$PY" -c 'import sys, torch; print(sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.is_available())'
  local extra=()
  if [ "${GPU_KIT_DRY:-0}" = 1 ]; then
    export PYTHONPATH="$KIT/project"
    extra=(--dry)
  else
    local t=$SECONDS
    rm -rf "$SITE"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target "$SITE" "$KIT"/whl/*.whl || { echo "wheels: install failed"; return 3; }
    DS_BUILD_OPS=0 PYTHONPATH="$SITE" "$PY" -m pip install -q --no-index --no-deps \
      --no-build-isolation --no-cache-dir --target "$SITE" "$KIT"/whl/deepspeed-*.tar.gz \
      > /tmp/bench-gpu-ds.log 2>&1 || { tail -n 30 /tmp/bench-gpu-ds.log; return 4; }
    echo "installed in $((SECONDS - t)) s"
    export PYTHONPATH="$SITE:$KIT/project"
  fi
  cd "$KIT/project" || return 5
  timeout -s INT -k 20 "${BENCH_TIMEOUT:-440}" "$PY" bench/bench_gpu.py \
    --model-src "$KIT/model_src" --json "$OUT/bench_gpu.json" --md "$OUT/bench_gpu.md" \
    "${extra[@]}" "$@"
}

main "$@" 2>&1 | grep --line-buffered -v "real_accelerator.py" | tee "$OUT/log.txt"
exit "${PIPESTATUS[0]}"
