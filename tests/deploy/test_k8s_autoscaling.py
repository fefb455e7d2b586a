"""The KEDA triggers read what the code really writes: the Redis lists Celery queues tasks in (a
real Celery producer on a real Redis), and the queue-depth gauge the worker exports."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from support.kustomize import OVERLAYS, container, env_values, find, one, overlay_path, port_numbers, render

from crossrank.pipeline.celery_app import QUEUES, celery_config
from crossrank.pipeline.settings import PipelineSettings

QUERY = re.compile(r'^sum\((\w+)\{namespace="([\w-]+)"\}\)$')


@pytest.fixture(params=OVERLAYS)
def objects(request) -> list[dict]:
    return render(overlay_path(request.param))


def triggers(objects: list[dict], target: str) -> list[dict]:
    (scaled,) = [so for so in find(objects, "ScaledObject") if so["spec"]["scaleTargetRef"]["name"] == target]
    return scaled["spec"]["triggers"]


def test_pipeline_scales_on_every_queue_it_consumes(objects):
    lists = [t["metadata"]["listName"] for t in triggers(objects, "crossrank-pipeline")]
    assert sorted(lists) == sorted(QUEUES)
    args = container(one(objects, "Deployment", "crossrank-pipeline"))["command"]
    assert sorted(args[args.index("--queues") + 1].split(",")) == sorted(lists)


def test_keda_reaches_the_redis_service_and_database_the_pipeline_uses(objects):
    namespace = one(objects, "Service", "crossrank-redis")["metadata"]["namespace"]
    (port,) = one(objects, "Service", "crossrank-redis")["spec"]["ports"]
    env = env_values(container(one(objects, "Deployment", "crossrank-pipeline")))
    database = urlsplit(env["CROSSRANK_REDIS_URL"]).path.lstrip("/")
    for trigger in triggers(objects, "crossrank-pipeline"):
        meta = trigger["metadata"]
        # KEDA's operator runs in its own namespace: only the full name resolves there.
        assert meta["address"] == f"crossrank-redis.{namespace}.svc.cluster.local:{port['port']}"
        assert meta["databaseIndex"] == database
        assert int(meta["listLength"]) > 0


def test_celery_queues_each_task_in_the_redis_list_keda_reads(objects, private_redis):
    """A task sent through the app's own routing lands, one message, in the list named by a trigger."""
    import redis
    from celery import Celery

    url = private_redis  # db 0 of a server of its own: the database KEDA reads
    config = celery_config(PipelineSettings(redis_url=url))
    producer = Celery("k8s-probe", set_as_current=False)
    producer.config_from_object(config)
    lists = {t["metadata"]["listName"] for t in triggers(objects, "crossrank-pipeline")}
    with redis.Redis.from_url(url) as r:
        r.flushdb()
        for task, route in config["task_routes"].items():
            producer.send_task(task, args=[{}])
            assert route["queue"] in lists, task
            assert r.llen(route["queue"]) == 1, (task, r.keys())
            r.delete(route["queue"])
    producer.close()


def test_workers_scale_on_the_queue_depth_gauge_the_worker_exports(objects):
    from prometheus_client import Gauge

    from crossrank.worker.metrics import WorkerMetrics

    (trigger,) = triggers(objects, "crossrank-worker")
    assert trigger["type"] == "prometheus"
    metric, namespace = QUERY.match(trigger["metadata"]["query"]).groups()
    metrics = WorkerMetrics()
    assert metrics.queue_depth._name == metric and isinstance(metrics.queue_depth, Gauge)
    assert {m.name for m in metrics.registry.collect()} >= {metric}
    assert namespace == one(objects, "Deployment", "crossrank-worker")["metadata"]["namespace"]
    assert float(trigger["metadata"]["threshold"]) > 0


def test_prometheus_scrapes_the_metrics_port(objects):
    for name in ("crossrank-worker", "crossrank-pipeline"):
        template = one(objects, "Deployment", name)["spec"]["template"]
        ports = port_numbers(container(one(objects, "Deployment", name)))
        assert template["metadata"]["annotations"]["prometheus.io/port"] == str(ports["metrics"]), name
