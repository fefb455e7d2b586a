"""Job state in Redis: what a job is, how far it got, and what went wrong.

A job is one hash (`<prefix>:job:<id>`) plus a set of finished chunk numbers and a capped list of
errors. A chunk is counted by a Lua script that adds its number to the set first: a chunk that a
redelivery runs twice moves the progress once, and the job becomes `done` exactly when its last
chunk is counted, never while results are missing.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field

import redis

STATES = ("queued", "running", "done", "failed", "cancelled")
FINISHED = frozenset({"done", "failed", "cancelled"})
MAX_ERRORS = 1000  # kept per job; the count goes on

# KEYS: job hash, chunk set, stats hash. ARGV: chunk, items, counts (JSON), now, failed (0/1), kind.
_COMPLETE_CHUNK = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[1], 'done', ARGV[2])
for name, value in pairs(cjson.decode(ARGV[3])) do
  redis.call('HINCRBY', KEYS[1], 'count:' .. name, value)
end
local outcome = 'ok'
if ARGV[5] == '1' then
  redis.call('HINCRBY', KEYS[1], 'chunks_failed', 1)
  outcome = 'failed'
end
redis.call('HINCRBY', KEYS[3], 'chunks:' .. ARGV[6] .. ':' .. outcome, 1)
local finished = redis.call('HINCRBY', KEYS[1], 'chunks_done', 1)
if finished >= tonumber(redis.call('HGET', KEYS[1], 'chunks')) then
  local state = redis.call('HGET', KEYS[1], 'state')
  if state == 'queued' or state == 'running' then
    local failed = tonumber(redis.call('HGET', KEYS[1], 'chunks_failed') or '0')
    redis.call('HSET', KEYS[1], 'state', failed > 0 and 'failed' or 'done', 'finished_at', ARGV[4])
  end
end
return 1
"""

# KEYS: job hash. ARGV: now. queued -> running, once.
_START = """
if redis.call('HGET', KEYS[1], 'state') == 'queued' then
  redis.call('HSET', KEYS[1], 'state', 'running', 'started_at', ARGV[1])
end
return redis.call('HGET', KEYS[1], 'state')
"""

# KEYS: job hash. ARGV: now. queued/running -> cancelled.
_CANCEL = """
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'queued' or state == 'running' then
  redis.call('HSET', KEYS[1], 'state', 'cancelled', 'finished_at', ARGV[1])
  return 'cancelled'
end
return state
"""


class JobNotFound(KeyError):
    def __init__(self, job_id: str):
        super().__init__(job_id)
        self.job_id = job_id

    def __str__(self) -> str:
        return f"no job {self.job_id!r} (jobs are kept in Redis; is CROSSRANK_REDIS_URL the one it was submitted to?)"


@dataclass(frozen=True)
class JobStatus:
    id: str
    kind: str  # index | rerank
    state: str
    collection: str
    total: int
    done: int
    chunks: int
    chunks_done: int
    counts: dict[str, int]
    errors: list[dict]
    error_count: int
    created_at: float
    started_at: float | None
    finished_at: float | None
    params: dict = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    @property
    def elapsed(self) -> float:
        """Seconds since the first chunk started, until the job ended (0 while queued)."""
        if self.started_at is None:
            return 0.0
        return max((self.finished_at or time.time()) - self.started_at, 0.0)

    def rate(self, count: str) -> float:
        """A count per second of running time; failed items are not throughput."""
        return self.counts.get(count, 0) / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def throughput(self) -> dict[str, float]:
        if self.kind == "index":
            return {"documents_per_s": self.rate("indexed"), "passages_per_s": self.rate("passages")}
        return {"queries_per_s": self.rate("queries"), "pairs_per_s": self.rate("pairs")}

    def as_dict(self) -> dict:
        return {"id": self.id, "kind": self.kind, "state": self.state, "collection": self.collection,
                "progress": {"done": self.done, "total": self.total}, "counts": self.counts,
                "errors": self.errors, "error_count": self.error_count, "created_at": self.created_at,
                "started_at": self.started_at, "finished_at": self.finished_at,
                "elapsed_s": round(self.elapsed, 3),
                "throughput": {k: round(v, 2) for k, v in self.throughput.items()}, "params": self.params}


class JobStore:
    def __init__(self, client: redis.Redis, prefix: str = "crossrank"):
        self.redis = client
        self.prefix = prefix
        self._complete = client.register_script(_COMPLETE_CHUNK)
        self._start = client.register_script(_START)
        self._cancel = client.register_script(_CANCEL)

    @classmethod
    def from_url(cls, url: str, prefix: str = "crossrank") -> JobStore:
        return cls(redis.Redis.from_url(url, decode_responses=True), prefix)

    def _key(self, job_id: str, part: str = "") -> str:
        return f"{self.prefix}:job:{job_id}" + (f":{part}" if part else "")

    @property
    def _index(self) -> str:
        return f"{self.prefix}:jobs"

    @property
    def stats_key(self) -> str:
        return f"{self.prefix}:stats"

    # -- writing ---------------------------------------------------------------------------------

    def create(self, kind: str, collection: str, total: int, chunks: int, params: dict,
               counts: dict[str, int] | None = None, errors: list[dict] | None = None) -> str:
        job_id = uuid.uuid4().hex[:16]
        now = time.time()
        fields = {"id": job_id, "kind": kind, "state": "queued", "collection": collection, "total": total,
                  "done": 0, "chunks": chunks, "chunks_done": 0, "chunks_failed": 0, "created_at": now,
                  "params": json.dumps(params), **{f"count:{k}": v for k, v in (counts or {}).items()}}
        if chunks == 0:  # nothing to process: finished on arrival
            fields.update(state="done", started_at=now, finished_at=now)
        with self.redis.pipeline() as p:
            p.hset(self._key(job_id), mapping=fields)
            p.zadd(self._index, {job_id: now})
            p.execute()
        for error in errors or []:
            self.add_error(job_id, error)
        return job_id

    def start(self, job_id: str) -> str:
        """Mark the job running when its first chunk starts; returns the state."""
        return self._start(keys=[self._key(job_id)], args=[time.time()])

    def complete_chunk(self, job_id: str, chunk: int, items: int, counts: dict[str, int], failed: bool = False,
                       kind: str = "") -> bool:
        """Count a chunk once; False when it was already counted (a redelivery) or the job is gone."""
        done = self._complete(keys=[self._key(job_id), self._key(job_id, "chunks"), self.stats_key],
                              args=[chunk, items, json.dumps(counts), time.time(), int(failed), kind or "job"])
        return done == 1

    def add_error(self, job_id: str, error: dict) -> None:
        with self.redis.pipeline() as p:
            p.rpush(self._key(job_id, "errors"), json.dumps(error, ensure_ascii=False))
            p.ltrim(self._key(job_id, "errors"), 0, MAX_ERRORS - 1)
            p.hincrby(self._key(job_id), "error_count", 1)
            p.execute()

    def note_retry(self, kind: str) -> None:
        self.redis.hincrby(self.stats_key, f"retries:{kind}", 1)

    def cancel(self, job_id: str) -> JobStatus:
        if self._cancel(keys=[self._key(job_id)], args=[time.time()]) is None:
            raise JobNotFound(job_id)
        return self.get(job_id)

    def delete(self, job_id: str) -> None:
        self.redis.delete(self._key(job_id), self._key(job_id, "chunks"), self._key(job_id, "errors"))
        self.redis.zrem(self._index, job_id)

    # -- reading ---------------------------------------------------------------------------------

    def state(self, job_id: str) -> str | None:
        return self.redis.hget(self._key(job_id), "state")

    def get(self, job_id: str) -> JobStatus:
        with self.redis.pipeline() as p:
            p.hgetall(self._key(job_id))
            p.lrange(self._key(job_id, "errors"), 0, -1)
            fields, errors = p.execute()
        if not fields:
            raise JobNotFound(job_id)
        return _status(fields, errors)

    def list(self, limit: int = 20) -> list[JobStatus]:
        """The most recent jobs first."""
        found = []
        for job_id in self.redis.zrevrange(self._index, 0, max(limit, 1) - 1):
            try:
                found.append(self.get(job_id))
            except JobNotFound:  # expired or deleted under us
                self.redis.zrem(self._index, job_id)
        return found

    def stats(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.redis.hgetall(self.stats_key).items()}

    def states(self, limit: int = 10000) -> dict[tuple[str, str], int]:
        """(kind, state) -> number of jobs, over the most recent `limit` jobs."""
        ids = self.redis.zrevrange(self._index, 0, limit - 1)
        with self.redis.pipeline() as p:
            for job_id in ids:
                p.hmget(self._key(job_id), "kind", "state")
            rows = p.execute()
        counts: dict[tuple[str, str], int] = {}
        for kind, state in rows:
            if kind and state:
                counts[(kind, state)] = counts.get((kind, state), 0) + 1
        return counts


def _float(value: str | None) -> float | None:
    return float(value) if value not in (None, "") else None


def _status(fields: dict[str, str], errors: list[str]) -> JobStatus:
    return JobStatus(
        id=fields["id"], kind=fields["kind"], state=fields["state"], collection=fields["collection"],
        total=int(fields["total"]), done=int(fields["done"]), chunks=int(fields["chunks"]),
        chunks_done=int(fields["chunks_done"]),
        counts={k.removeprefix("count:"): int(v) for k, v in fields.items() if k.startswith("count:")},
        errors=[json.loads(e) for e in errors], error_count=int(fields.get("error_count", 0)),
        created_at=float(fields["created_at"]), started_at=_float(fields.get("started_at")),
        finished_at=_float(fields.get("finished_at")), params=json.loads(fields.get("params", "{}")))
