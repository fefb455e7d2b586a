"""Job state in Redis: what a job is, how far it got, who is working on it, and what went wrong.

A job is one hash (`<prefix>:job:<id>`) plus, per job:
- `:chunks`, the set of counted chunk numbers. A chunk is counted by a Lua script that adds its
  number to the set first: a chunk that a redelivery runs twice moves the progress once, and the job
  becomes `done` exactly when its last chunk is counted, never while results are missing;
- `:payloads`, the task message of each chunk not yet counted, so that a lost chunk can be sent again
  (`resume`, and the stall watchdog in bookkeeping.py);
- `:owners`, who runs each started chunk and when it last said so (a heartbeat). A chunk whose owner
  has been silent for `stall_after` seconds is stalled: its process died without a word;
- `:partial`, what each running chunk has done so far, so that progress moves before a chunk ends;
- `:errors`, a capped list.
Finished jobs drop their payloads, owners and partial progress.

The Redis client retries through outages (a restart, a failover): job-state writes are idempotent,
so a write whose reply was lost can be sent again.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from crossrank.pipeline.settings import PipelineSettings

STATES = ("queued", "running", "done", "failed", "cancelled")  # as stored; `stalled` is read off a running job
FINISHED = frozenset({"done", "failed", "cancelled"})
MAX_ERRORS = 1000  # kept per job; the count goes on
# About a minute of retries (0.1 s doubling to 4 s apart): longer than a Redis restart with AOF.
REDIS_RETRIES = 20

# KEYS: job hash, chunk set, stats hash, payloads, owners, partial, active set.
# ARGV: chunk, items, counts (JSON), now, failed (0/1), kind, job id.
_COMPLETE_CHUNK = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
redis.call('HDEL', KEYS[5], ARGV[1])
redis.call('HDEL', KEYS[6], ARGV[1])
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('HSET', KEYS[1], 'touched_at', ARGV[4])
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
  redis.call('DEL', KEYS[4], KEYS[5], KEYS[6])
  redis.call('SREM', KEYS[7], ARGV[7])
end
return 1
"""

# KEYS: job hash, chunk set, owners, active set. ARGV: now, chunk ('' for none), owner, job id.
# queued -> running, once; the chunk (unless already counted) is owned from now on.
_START = """
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'queued' then
  redis.call('HSET', KEYS[1], 'state', 'running', 'started_at', ARGV[1])
  redis.call('SADD', KEYS[4], ARGV[4])
  state = 'running'
end
if state == 'running' and ARGV[2] ~= '' and redis.call('SISMEMBER', KEYS[2], ARGV[2]) == 0 then
  redis.call('HSET', KEYS[3], ARGV[2], cjson.encode({owner = ARGV[3], at = tonumber(ARGV[1])}))
  redis.call('HSET', KEYS[1], 'touched_at', ARGV[1])
end
return state
"""

# KEYS: job hash, owners. ARGV: now, chunk, owner. Only a chunk still owned by this owner beats:
# a late beat after the chunk was counted, or re-enqueued, writes nothing.
_BEAT = """
local current = redis.call('HGET', KEYS[2], ARGV[2])
if not current then return 0 end
current = cjson.decode(current)
if current.owner ~= ARGV[3] or current.requeued then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], cjson.encode({owner = ARGV[3], at = tonumber(ARGV[1])}))
redis.call('HSET', KEYS[1], 'touched_at', ARGV[1])
return 1
"""

# KEYS: job hash, owners. ARGV: now, stall_after, claimer. Chunks whose owner has been silent too
# long are marked re-enqueued (once, by one claimer) and returned, so that they are sent once.
_CLAIM_STALLED = """
if redis.call('HGET', KEYS[1], 'state') ~= 'running' then return {} end
local claimed = {}
local entries = redis.call('HGETALL', KEYS[2])
for i = 1, #entries, 2 do
  local owner = cjson.decode(entries[i + 1])
  if not owner.requeued and tonumber(ARGV[1]) - owner.at > tonumber(ARGV[2]) then
    redis.call('HSET', KEYS[2], entries[i], cjson.encode(
      {owner = owner.owner, at = tonumber(ARGV[1]), requeued = ARGV[3]}))
    table.insert(claimed, entries[i])
  end
end
return claimed
"""

# KEYS: job hash, active set. ARGV: now, job id. queued/running -> cancelled.
_CANCEL = """
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'queued' or state == 'running' then
  redis.call('HSET', KEYS[1], 'state', 'cancelled', 'finished_at', ARGV[1])
  redis.call('SREM', KEYS[2], ARGV[2])
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
    state: str  # one of STATES, or `stalled`: a running job that nothing has moved for a while
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
    stalled: str = ""  # why the job is stalled, and what to do
    # What running chunks have done so far (items, and counts such as pairs): not yet in done/counts.
    in_flight: dict[str, int] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    @property
    def progress(self) -> int:
        """Items done, counting what running chunks have done so far."""
        return min(self.done + self.in_flight.get("items", 0), self.total)

    @property
    def elapsed(self) -> float:
        """Seconds since the first chunk started, until the job ended (0 while queued)."""
        if self.started_at is None:
            return 0.0
        return max((self.finished_at or time.time()) - self.started_at, 0.0)

    def rate(self, count: str) -> float:
        """A count per second of running time, running chunks included; failed items are not throughput."""
        total = self.counts.get(count, 0) + self.in_flight.get(count, 0)
        return total / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def throughput(self) -> dict[str, float]:
        if self.kind == "index":
            return {"documents_per_s": self.rate("indexed"), "passages_per_s": self.rate("passages")}
        return {"queries_per_s": self.rate("queries"), "pairs_per_s": self.rate("pairs")}

    def as_dict(self) -> dict:
        return {"id": self.id, "kind": self.kind, "state": self.state, "stalled": self.stalled,
                "collection": self.collection, "progress": {"done": self.done, "total": self.total},
                "in_flight": self.in_flight,
                "counts": self.counts, "errors": self.errors, "error_count": self.error_count,
                "created_at": self.created_at, "started_at": self.started_at, "finished_at": self.finished_at,
                "elapsed_s": round(self.elapsed, 3),
                "throughput": {k: round(v, 2) for k, v in self.throughput.items()}, "params": self.params}


class JobStore:
    def __init__(self, client: redis.Redis, prefix: str = "crossrank", stall_after: float = 30.0):
        self.redis = client
        self.prefix = prefix
        self.stall_after = stall_after
        self._complete = client.register_script(_COMPLETE_CHUNK)
        self._start = client.register_script(_START)
        self._beat = client.register_script(_BEAT)
        self._claim = client.register_script(_CLAIM_STALLED)
        self._cancel = client.register_script(_CANCEL)

    @classmethod
    def from_settings(cls, settings: PipelineSettings) -> JobStore:
        """The job store every process uses: Redis at `redis_url`, keys under `key_prefix`, retrying
        through outages."""
        retry = Retry(ExponentialWithJitterBackoff(cap=4.0, base=0.1), retries=REDIS_RETRIES)
        client = redis.Redis.from_url(settings.redis_url, decode_responses=True, retry=retry,
                                      retry_on_error=[redis.ConnectionError, redis.TimeoutError])
        return cls(client, settings.key_prefix, settings.stall_seconds)

    def _key(self, job_id: str, part: str = "") -> str:
        return f"{self.prefix}:job:{job_id}" + (f":{part}" if part else "")

    @property
    def _index(self) -> str:
        return f"{self.prefix}:jobs"

    @property
    def _active(self) -> str:
        """Jobs that have started and not finished: what the stall watchdog looks at."""
        return f"{self.prefix}:active"

    @property
    def stats_key(self) -> str:
        return f"{self.prefix}:stats"

    # -- writing ---------------------------------------------------------------------------------

    def create(self, kind: str, collection: str, total: int, chunks: int, params: dict,
               counts: dict[str, int] | None = None, errors: list[dict] | None = None,
               payloads: list[dict] | None = None, job_id: str | None = None) -> str:
        """A new job; `payloads` are its chunks' task messages, kept until each chunk is counted."""
        job_id = job_id or new_job_id()
        now = time.time()
        fields = {"id": job_id, "kind": kind, "state": "queued", "collection": collection, "total": total,
                  "done": 0, "chunks": chunks, "chunks_done": 0, "chunks_failed": 0, "created_at": now,
                  "params": json.dumps(params), **{f"count:{k}": v for k, v in (counts or {}).items()}}
        if chunks == 0:  # nothing to process: finished on arrival
            fields.update(state="done", started_at=now, finished_at=now)
        with self.redis.pipeline() as p:
            p.hset(self._key(job_id), mapping=fields)
            if payloads:
                p.hset(self._key(job_id, "payloads"),
                       mapping={str(n): json.dumps(m, ensure_ascii=False) for n, m in enumerate(payloads)})
            p.zadd(self._index, {job_id: now})
            p.execute()
        for error in errors or []:
            self.add_error(job_id, error)
        return job_id

    def start(self, job_id: str, chunk: int | None = None, owner: str = "") -> str:
        """Mark the job running when its first chunk starts, and `owner` as the chunk's; returns the state."""
        return self._start(keys=[self._key(job_id), self._key(job_id, "chunks"), self._key(job_id, "owners"),
                                 self._active],
                           args=[time.time(), "" if chunk is None else chunk, owner, job_id])

    def beat(self, job_id: str, chunk: int, owner: str) -> bool:
        """The owner of a chunk is alive; False when the chunk is no longer its own."""
        return self._beat(keys=[self._key(job_id), self._key(job_id, "owners")],
                          args=[time.time(), chunk, owner]) == 1

    def progress(self, job_id: str, chunk: int, so_far: dict[str, int]) -> None:
        """What a running chunk has done so far; replaced on each call, dropped when the chunk is counted."""
        self.redis.hset(self._key(job_id, "partial"), str(chunk), json.dumps(so_far))

    def complete_chunk(self, job_id: str, chunk: int, items: int, counts: dict[str, int], failed: bool = False,
                       kind: str = "") -> bool:
        """Count a chunk once; False when it was already counted (a redelivery) or the job is gone."""
        keys = [self._key(job_id), self._key(job_id, "chunks"), self.stats_key, self._key(job_id, "payloads"),
                self._key(job_id, "owners"), self._key(job_id, "partial"), self._active]
        done = self._complete(keys=keys, args=[chunk, items, json.dumps(counts), time.time(), int(failed),
                                               kind or "job", job_id])
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
        if self._cancel(keys=[self._key(job_id), self._active], args=[time.time(), job_id]) is None:
            raise JobNotFound(job_id)
        return self.get(job_id)

    def claim_stalled(self, job_id: str, claimer: str) -> list[dict]:
        """The messages of the job's chunks whose owners went silent, each claimed by one caller only."""
        chunks = self._claim(keys=[self._key(job_id), self._key(job_id, "owners")],
                             args=[time.time(), self.stall_after, claimer])
        return self._payloads(job_id, chunks)

    def active(self) -> list[str]:
        return sorted(self.redis.smembers(self._active))

    def pending(self, job_id: str) -> list[dict]:
        """The messages of every chunk not yet counted, in chunk order."""
        if not self.redis.exists(self._key(job_id)):
            raise JobNotFound(job_id)
        return self._payloads(job_id, self.redis.hkeys(self._key(job_id, "payloads")))

    def _payloads(self, job_id: str, chunks: list[str]) -> list[dict]:
        if not chunks:
            return []
        found = self.redis.hmget(self._key(job_id, "payloads"), chunks)
        return [json.loads(m) for _, m in sorted(zip(map(int, chunks), found, strict=True)) if m is not None]

    # -- reading ---------------------------------------------------------------------------------

    def state(self, job_id: str) -> str | None:
        return self.redis.hget(self._key(job_id), "state")

    def get(self, job_id: str) -> JobStatus:
        with self.redis.pipeline() as p:
            p.hgetall(self._key(job_id))
            p.lrange(self._key(job_id, "errors"), 0, -1)
            p.hgetall(self._key(job_id, "owners"))
            p.hvals(self._key(job_id, "partial"))
            fields, errors, owners, partial = p.execute()
        if not fields:
            raise JobNotFound(job_id)
        job = _status(fields, errors, partial)
        reason = _stalled(job, fields, owners, time.time(), self.stall_after)
        if reason:
            return JobStatus(**{**job.__dict__, "state": "stalled", "stalled": reason})
        return job

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
        """(kind, state) -> number of jobs, over the most recent `limit` jobs (as stored: never `stalled`)."""
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


def new_job_id() -> str:
    return uuid.uuid4().hex[:16]


def _float(value: str | None) -> float | None:
    return float(value) if value not in (None, "") else None


def _stalled(job: JobStatus, fields: dict[str, str], owners: dict[str, str], now: float, stall_after: float) -> str:
    """Why a running job is stalled, or '' when something has moved within `stall_after` seconds."""
    if job.state != "running":
        return ""
    hint = f"`crossrank jobs resume {job.id}` sends its missing chunks again"
    silent = sorted((int(chunk), entry) for chunk, entry in ((c, json.loads(e)) for c, e in owners.items())
                    if not entry.get("requeued") and now - entry["at"] > stall_after)
    if silent:
        chunk, entry = silent[0]
        more = f" (and {len(silent) - 1} more chunks)" if len(silent) > 1 else ""
        return (f"chunk {chunk}{more}: no heartbeat from {entry['owner']} for {now - entry['at']:.0f}s; "
                f"a pipeline worker re-enqueues it, or {hint}")
    touched = _float(fields.get("touched_at")) or job.started_at or now
    if now - touched > stall_after and not any(now - json.loads(e)["at"] <= stall_after for e in owners.values()):
        return (f"no chunk started or finished for {now - touched:.0f}s: its chunks wait behind other jobs, no "
                f"pipeline worker runs, or a message was lost; {hint}")
    return ""


def _status(fields: dict[str, str], errors: list[str], partial: list[str]) -> JobStatus:
    in_flight: dict[str, int] = {}
    for entry in partial:
        for name, value in json.loads(entry).items():
            in_flight[name] = in_flight.get(name, 0) + value
    return JobStatus(
        id=fields["id"], kind=fields["kind"], state=fields["state"], collection=fields["collection"],
        total=int(fields["total"]), done=int(fields["done"]), chunks=int(fields["chunks"]),
        chunks_done=int(fields["chunks_done"]),
        counts={k.removeprefix("count:"): int(v) for k, v in fields.items() if k.startswith("count:")},
        errors=[json.loads(e) for e in errors], error_count=int(fields.get("error_count", 0)),
        created_at=float(fields["created_at"]), started_at=_float(fields.get("started_at")),
        finished_at=_float(fields.get("finished_at")), params=json.loads(fields.get("params", "{}")),
        in_flight=in_flight)
