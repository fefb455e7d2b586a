"""Drive a running worker with the bench's RerankStream load (32 in flight) and print pairs/s per round.

    python scripts/stream_load.py HOST:PORT QUERIES ROUNDS

Used by scripts/gil_profile.sh, which profiles the worker process while this runs.
"""

import sys

from crossrank.worker.bench import runners
from crossrank.worker.bench.workload import make_workload

address, queries, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
workload = make_workload(queries, 0)
pairs = sum(len(q.documents) for q in workload)
for _ in range(rounds):
    run = runners.run_stream(address, workload, 32)
    print(f"{run.name} {pairs / run.wall_s:.1f} pairs/s", flush=True)
