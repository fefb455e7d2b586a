#!/usr/bin/env bash
# The whole GPU bench in one go, within 8 minutes on an H100/H200 (recipe: ../shared/gpu/README.md).
#   Here, once:            bash scripts/gpu-bench.sh prepare   (makes .gpu/: wheels, tokenizer, run-bench.sh)
#   On the GPU machine:    bash scripts/gpu-bench.sh           (with .gpu/ copied along; results in $OUT;
#                          a device run of it needs timeout_s of about 580: its steps stop by 530 s)
# Runs, each with (a), (p), (m), the one-core tokenizer rate, 1 and 32 clients and a stream:
#   bge-reranker-v2-m3 shape at fp16 (128 queries, 16k-token / 256-pair batches), its worker-process row
#   split into 4 frontends and an engine core; then the host path alone: the 1-layer tiny model on the
#   GPU, whose model costs the host nothing, with the worker process at 1, 2, 4 and 8 frontends; last, on
#   that machine's 16 cores, issue 19's herd (600 clients at once, 100 documents, 30 s deadlines)
#   against 4 frontends serving the MiniLM-L6 shape on the CPU, and against a bare server and one
#   refusing inside gRPC beside it (`overload.py --floor --grpc-floor`): on 2 cores, with the load
#   generator beside them, even the one refusing inside gRPC misses 100 ms at p99, so only a machine
#   with cores to spare can tell.
set -euo pipefail
if [ "${1:-}" = prepare ]; then
  # psutil: the bench reads the CPU time of the worker it starts as its own process; pyzmq: frontends and
  # the engine core talk over ZeroMQ.
  GPU_EXTRA_WHEELS="psutil==7.2.2 pyzmq==27.1.0 ${GPU_EXTRA_WHEELS:-}" exec bash ../shared/gpu/prepare.sh
fi
[ -f .gpu/run-bench.sh ] || { echo "no .gpu/: run 'bash scripts/gpu-bench.sh prepare' here first"; exit 1; }
export OUT=${OUT:-$PWD/bench-out}
GPU_CMD='
timeout 200 crossrank bench --model bge-reranker-v2-m3 --device cuda --dtype fp16 --queries 128 \
  --levels 1,32 --max-batch-tokens 16384 --max-batch-pairs 256 --frontends 4 --out $OUT/bge-m3-fp16 \
  2>$OUT/bge-m3.log
for n in 1 2 4 8; do
  timeout 45 crossrank bench --model tiny --device cuda --dtype fp16 --queries 64 --levels 1,32 \
    --max-batch-tokens 16384 --max-batch-pairs 256 --frontends $n --out $OUT/tiny-f$n 2>$OUT/tiny-f$n.log
done
M=$(python3 -c "from crossrank.worker.bench.models import build_model as b; \
from crossrank.worker.bench.settings import BenchSettings as S; print(b(\"minilm-l6\", S.from_env()))" | tail -1)
timeout 150 python3 scripts/overload.py --model "$M" --clients 600 --docs 100 --deadline 30 --seconds 20 \
  --frontends 4 --floor --grpc-floor >$OUT/herd-f4.txt 2>$OUT/herd-f4.log
' exec bash .gpu/run-bench.sh
