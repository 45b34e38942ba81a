#!/usr/bin/env bash
# The accelerator check, prepared as one short script for a session that is lent a GPU machine
# (run it there from the repository root; results land in $OUT, or ./gpu-check without it).
# The image there has jax (CUDA), optax, pandas, pyarrow, tqdm, matplotlib, but not mnist1d and
# nothing can be installed: build the MNIST-1D cache here first and carry it,
#     INITMAP_CACHE=.gpu-cache python -c 'from research.training.data import mnist1d; mnist1d()'
#     device run: bash scripts/gpu_check.sh   with carry: [".gpu-cache"]
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
python3 -m research.views.devicecheck | tee "$out/table.md"
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
