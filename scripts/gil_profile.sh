#!/usr/bin/env bash
# Where the worker holds the GIL while it serves: py-spy --gil samples a `crossrank serve` process while
# scripts/stream_load.py drives it, and writes collapsed stacks to $OUT/gil.txt (flamegraph "raw" format).
# On the GPU machine (py-spy comes as a wheel: GPU_EXTRA_WHEELS=py-spy==0.4.1 ../shared/gpu/prepare.sh here):
#   GPU_CMD='bash scripts/gil_profile.sh' bash .gpu/run-bench.sh
# On a CPU: PROBE_MODEL=tiny PROBE_DEVICE=cpu PROBE_DTYPE=fp32 PROBE_Q=16 OUT=/tmp/gil bash scripts/gil_profile.sh
set -u
M=${PROBE_MODEL:-bge-reranker-v2-m3}; DEV=${PROBE_DEVICE:-cuda}; DT=${PROBE_DTYPE:-fp16}; Q=${PROBE_Q:-128}
OUT=${OUT:-$PWD/bench-out}; mkdir -p "$OUT"
P=$(python -c "from crossrank.worker.bench.models import build_model; from crossrank.worker.bench.settings \
import BenchSettings; print(build_model('$M', BenchSettings.from_env()))" 2>/dev/null | tail -1)
SPY=$(command -v py-spy || echo "${PYTHONPATH:-}/bin/py-spy")
"$SPY" record --gil -r 100 -f raw -o "$OUT/gil.txt" --nonblocking -- crossrank serve --model "$P" \
  --embed-model none --device "$DEV" --dtype "$DT" --port 50071 --max-batch-tokens 16384 \
  --max-batch-pairs 256 > "$OUT/serve.log" 2>&1 &
crossrank info --target 127.0.0.1:50071 --wait --wait-for-worker --timeout 90 | tail -3
python scripts/stream_load.py 127.0.0.1:50071 "$Q" 3
pkill -INT -f "crossrank serve --model $P"; sleep 6; tail -3 "$OUT/serve.log"
