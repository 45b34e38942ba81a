#!/usr/bin/env bash
# What initmap does on a GPU, in one run from the repository root (results in $OUT, or
# ./gpu-check): the device (nvidia-smi); one table of net-steps/s for the tiny, target, medium
# and large MLPs and a Flax module, with the fraction of the measured matmul peak and the memory
# per member (research.measure.devicecheck); the per-step cost ladder; `initmap sweep quick` timed,
# in float32 and bfloat16; and the engine's tests on the device.
# MNIST-1D is read from INITMAP_CACHE=.gpu-cache: on a machine without the mnist1d package or
# network access, build it first where they are and copy the folder over:
#     INITMAP_CACHE=.gpu-cache python -c 'from research.training.data import mnist1d; mnist1d()'
# It stops with a clear message when jax sees no GPU. About 5 minutes on one H200.
set -euo pipefail
out="${OUT:-gpu-check}"
mkdir -p "$out"
export PYTHONPATH="$PWD" INITMAP_CACHE="$PWD/.gpu-cache"
python3 - <<'PY'
import jax
gpus = [d for d in jax.devices() if d.platform == "gpu"]
raise SystemExit(0 if gpus else "no GPU visible to jax: " + str(jax.devices()))
PY
nvidia-smi --query-gpu=name,memory.total,clocks.sm --format=csv | tee "$out/gpu.txt"
# The one table: net-steps/s for the tiny, target, medium and large MLPs and a Flax module,
# the fraction of the measured matmul peak, memory per member (estimate and XLA's analysis).
python3 -m research.measure.devicecheck | tee "$out/table.md"
# The per-step cost ladder on the device (bare step, checks, freezing, momentum, logging).
python3 -m research bench --only step-cost --json > "$out/step-cost.json"
# The main job, timed, and the same sweep in bfloat16.
/usr/bin/time -v python3 -m research sweep quick --out "$out/quick" --quiet --json \
    > "$out/quick.json" 2> "$out/quick.time"
python3 -m research sweep quick --compute-dtype bfloat16 --out "$out/quick-bf16" --quiet --json \
    > "$out/quick-bf16.json"
# No host transfers inside the training loop, and the engine's core tests, on the GPU.
python3 -m pytest -q -p no:cacheprovider tests/training/test_engine.py > "$out/pytest.txt" 2>&1 || true
tail -n 3 "$out/pytest.txt"
