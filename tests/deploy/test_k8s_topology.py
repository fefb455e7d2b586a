"""The rendered Kubernetes objects against what the code defines and what `crossrank up` and
docker-compose run: the environment, ports, health checks, queue names, metric name and drain grace
come from the code or its compose files, so the manifests cannot drift from them."""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

import pytest
from support.compose import VARIANTS, argv, compose_config, environment, resolve_crossrank
from support.kustomize import (
    OVERLAYS,
    SECRET,
    container,
    env_secrets,
    env_values,
    expand,
    find,
    one,
    overlay_path,
    pod_spec,
    port_numbers,
    render,
    selects,
    workloads,
)

from crossrank.pipeline.celery_app import QUEUES
from crossrank.pipeline.settings import PipelineSettings
from crossrank.worker.settings import WorkerSettings

# After its grace period a worker stops its engine, answers what is left and exits: a few seconds
# (the compose stop period leaves the same, tests/deploy/test_stop_grace.py).
EXIT_SECONDS = 5
# The compose variant each overlay mirrors (the gpu overlay: one worker per GPU, as compose's base).
COMPOSE_VARIANT = {"gpu": "gpu", "cpu": "cpu"}


@pytest.fixture(params=OVERLAYS)
def overlay(request) -> tuple[str, list[dict]]:
    return request.param, render(overlay_path(request.param))


def compose_service(overlay_name: str, service: str) -> dict:
    return compose_config(*VARIANTS[COMPOSE_VARIANT[overlay_name]])["services"][service]


def worker(objects: list[dict]) -> dict:
    return container(one(objects, "Deployment", "crossrank-worker"))


def pipeline(objects: list[dict]) -> dict:
    return container(one(objects, "Deployment", "crossrank-pipeline"))


def worker_settings(c: dict, monkeypatch) -> WorkerSettings:
    """The worker container's environment as `crossrank serve`'s own options read it (secrets set)."""
    from crossrank.worker.cli import serve

    with monkeypatch.context() as m:
        for key in [k for k in os.environ if k.startswith("CROSSRANK_")]:
            m.delenv(key)
        for key, value in env_values(c).items():
            m.setenv(key, value)
        for key in env_secrets(c):
            m.setenv(key, "from-the-secret")
        ctx = serve.make_context("serve", [])
    values = dict(ctx.params)
    values.pop("verbose")
    return WorkerSettings(**values).validate()


def pipeline_env(c: dict) -> dict[str, str]:
    """The pipeline container's environment after Kubernetes' $(NAME) expansion, secrets filled in."""
    env = {}
    for e in c["env"]:
        env[e["name"]] = expand(e["value"], env) if "value" in e else f"secret-{e['name'].lower()}"
    return env


# -- the worker: as compose runs it, by the settings `crossrank serve` reads -----------------------


def test_worker_environment_is_compose_s(overlay, worker_envvars):
    """Every variable compose's worker sets, with its value (the secrets: from the Secret, where
    compose takes them from the shell); beyond those, only real worker settings."""
    name, objects = overlay
    c = worker(objects)
    compose_env = environment(compose_service(name, "worker"))
    values, secrets = env_values(c), env_secrets(c)
    assert set(compose_env) <= set(values) | set(secrets), f"{name}: missing {set(compose_env) - set(values)}"
    assert {k: values[k] for k in compose_env if k in values} == {k: v for k, v in compose_env.items() if k in values}
    extra = (set(values) | set(secrets)) - set(compose_env)
    assert extra <= worker_envvars, extra


def test_worker_environment_makes_valid_settings(overlay, monkeypatch):
    name, objects = overlay
    c = worker(objects)
    settings = worker_settings(c, monkeypatch)
    assert settings.device == ("cpu" if name == "cpu" else "cuda:0")
    assert settings.auth_token, "the worker requires the token from the Secret"
    assert settings.json_logs
    ports = port_numbers(c)
    assert (ports["grpc"], ports["http"], ports["metrics"]) == (
        settings.port,
        settings.http_port,
        settings.metrics_port,
    )


def test_tokenizer_threads_fit_the_cpu_limit(overlay, monkeypatch):
    """The auto value counts the node's cores (sched_getaffinity), not the pod's CPU quota."""
    _, objects = overlay
    c = worker(objects)
    limit = int(c["resources"]["limits"]["cpu"])
    assert worker_settings(c, monkeypatch).tokenizer_workers == limit - 1


def test_secret_settings_come_from_the_secret(overlay):
    """Every setting marked secret (the auth token) is read from the Secret, never written here."""
    from dataclasses import fields

    _, objects = overlay
    secret_names = {
        f"CROSSRANK_{f.name.upper()}"
        for cls in (WorkerSettings, PipelineSettings)
        for f in fields(cls)
        if f.metadata.get("secret")
    }
    assert secret_names
    for c in (worker(objects), pipeline(objects)):
        assert not secret_names & set(env_values(c)), c["name"]
        for name in secret_names & {e["name"] for e in c["env"]}:
            assert env_secrets(c)[name][0] == SECRET


def test_worker_probes_ask_the_health_service_the_worker_registers(overlay):
    """Native gRPC probes on the worker's port, for the service name `crossrank serve` sets SERVING
    (checked on the worker's own health servicer), as `crossrank up` and compose wait for."""
    from grpc_health.v1 import health, health_pb2

    from crossrank.worker.grpc.server import set_health

    _, objects = overlay
    c = worker(objects)
    servicer = health.HealthServicer()
    set_health(servicer, health_pb2.HealthCheckResponse.SERVING)
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        probe = c[kind]["grpc"]
        assert probe["port"] == port_numbers(c)["grpc"], kind
        request = health_pb2.HealthCheckRequest(service=probe.get("service", ""))
        assert servicer.Check(request, None).status == health_pb2.HealthCheckResponse.SERVING, kind


def _seconds(duration: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)([smh])", duration))


def test_the_startup_probe_waits_as_long_as_compose_s_start_period(overlay):
    name, objects = overlay
    probe = worker(objects)["startupProbe"]
    start_period = _seconds(compose_service(name, "worker")["healthcheck"]["start_period"])
    assert probe["periodSeconds"] * probe["failureThreshold"] >= start_period


def test_termination_grace_covers_the_pause_and_the_drain(overlay, monkeypatch):
    _, objects = overlay
    deployment = one(objects, "Deployment", "crossrank-worker")
    c = container(deployment)
    pause = c["lifecycle"]["preStop"]["sleep"]["seconds"]
    grace = worker_settings(c, monkeypatch).grace_seconds
    assert pod_spec(deployment)["terminationGracePeriodSeconds"] >= pause + grace + EXIT_SECONDS


def test_gpu_pods_take_one_gpu_and_cpu_pods_none(overlay):
    name, objects = overlay
    deployment = one(objects, "Deployment", "crossrank-worker")
    limits = container(deployment)["resources"]["limits"]
    spec = pod_spec(deployment)
    if name == "gpu":
        assert limits["nvidia.com/gpu"] == 1, "one process per GPU"
        assert spec["nodeSelector"] and spec["tolerations"]
    else:
        assert "nvidia.com/gpu" not in limits and "nodeSelector" not in spec


def test_the_cpu_overlay_runs_compose_s_cpu_image(overlay):
    name, objects = overlay
    image = worker(objects)["image"]
    assert image.split(":")[1] == compose_service(name, "worker")["image"].split(":")[1]


# -- services: headless gRPC, a gateway, the names the pipeline dials ------------------------------


def test_grpc_service_is_headless_and_the_gateway_is_not(overlay):
    _, objects = overlay
    c = worker(objects)
    grpc_service = one(objects, "Service", "crossrank-worker")["spec"]
    gateway = one(objects, "Service", "crossrank-gateway")["spec"]
    assert grpc_service["clusterIP"] == "None"
    assert "clusterIP" not in gateway
    assert [(p["port"], p["targetPort"]) for p in grpc_service["ports"]] == [(port_numbers(c)["grpc"], "grpc")]
    assert [(p["port"], p["targetPort"]) for p in gateway["ports"]] == [(port_numbers(c)["http"], "http")]


def test_service_target_ports_name_a_port_of_the_pods_they_select(overlay):
    _, objects = overlay
    for service in find(objects, "Service"):
        pods = [
            w
            for w in workloads(objects)
            if selects(service["spec"]["selector"], w["spec"]["template"]["metadata"]["labels"])
        ]
        assert pods, service["metadata"]["name"]
        for port in service["spec"]["ports"]:
            for pod in pods:
                assert port["targetPort"] in port_numbers(container(pod)), (service["metadata"]["name"], port)


def test_pipeline_environment_makes_valid_settings_that_reach_the_services(overlay, pipeline_envvars):
    """The variables `crossrank up` hands its pipeline workers, pointing at the rendered Services."""
    from crossrank.pipeline.stack import LocalStack

    _, objects = overlay
    env = pipeline_env(pipeline(objects))
    served = {k for k in LocalStack().env if k != "CROSSRANK_CHROMA_PATH"}  # several writers: the server
    assert served <= set(env), served - set(env)
    assert {k for k in env if k.startswith("CROSSRANK_")} <= pipeline_envvars
    settings = PipelineSettings.from_env(env).validate()

    redis, chroma = urlsplit(settings.redis_url), urlsplit(settings.chroma_url)
    assert redis.password == "secret-redis_password"
    for url, name in ((redis, "crossrank-redis"), (chroma, "crossrank-chroma")):
        (port,) = one(objects, "Service", name)["spec"]["ports"]
        assert (url.hostname, url.port) == (name, port["port"])
    target = settings.worker_target.removeprefix("dns:///")
    host, port = target.rsplit(":", 1)
    assert settings.worker_target.startswith("dns:///")
    assert one(objects, "Service", host)["spec"]["clusterIP"] == "None"
    assert int(port) == port_numbers(worker(objects))["grpc"]


def test_pipeline_command_and_check_are_compose_s(overlay):
    name, objects = overlay
    c = pipeline(objects)
    service = compose_service(name, "pipeline")
    assert c["command"] == argv(service["command"])
    resolve_crossrank(c["command"][1:])
    args = c["command"]
    assert args[args.index("--queues") + 1].split(",") == list(QUEUES)
    assert str(port_numbers(c)["metrics"]) == args[args.index("--metrics-port") + 1]
    shell = c["livenessProbe"]["exec"]["command"]
    assert shell[:2] == ["sh", "-c"] and service["healthcheck"]["test"] == ["CMD-SHELL", shell[2].replace("$", "$$")]
    grace = _seconds(service["stop_grace_period"])
    assert pod_spec(one(objects, "Deployment", "crossrank-pipeline"))["terminationGracePeriodSeconds"] >= grace


# -- state: Redis and Chroma on claims ------------------------------------------------------------


def claim_mounts(statefulset: dict) -> set[str]:
    claims = {t["metadata"]["name"] for t in statefulset["spec"]["volumeClaimTemplates"]}
    return {m["mountPath"] for m in container(statefulset)["volumeMounts"] if m["name"] in claims}


def test_redis_keeps_an_append_only_file_on_its_claim_behind_the_password(overlay):
    name, objects = overlay
    redis = one(objects, "StatefulSet", "crossrank-redis")
    c = container(redis)
    args = c["args"]
    compose_args = argv(compose_service(name, "redis")["command"])
    for flag in ("--appendonly", "--appendfsync"):
        assert args[args.index(flag) + 1] == compose_args[compose_args.index(flag) + 1], flag
    assert args[args.index("--dir") + 1] in claim_mounts(redis)
    secrets = env_secrets(c)
    assert args[args.index("--requirepass") + 1] == "$(REDIS_PASSWORD)"
    assert secrets["REDIS_PASSWORD"] == secrets["REDISCLI_AUTH"] == env_secrets(pipeline(objects))["REDIS_PASSWORD"]
    assert redis["spec"]["replicas"] == 1


def test_chroma_is_one_writer_serving_its_claim(overlay):
    name, objects = overlay
    chroma = one(objects, "StatefulSet", "crossrank-chroma")
    args = container(chroma)["command"]
    assert args[:2] == argv(compose_service(name, "chroma")["command"])[:2] == ["chroma", "run"]
    assert args[args.index("--path") + 1] in claim_mounts(chroma)
    assert args[args.index("--port") + 1] == str(port_numbers(container(chroma))["chroma"])
    assert chroma["spec"]["replicas"] == 1, "Chroma takes a single writer"
    compose_check = " ".join(compose_service(name, "chroma")["healthcheck"]["test"])
    for kind in ("readinessProbe", "livenessProbe"):
        assert container(chroma)[kind]["httpGet"]["path"] in compose_check, kind


# -- security --------------------------------------------------------------------------------------


def dockerfile_user(name: str) -> int:
    from support.paths import ROOT

    (user,) = set(re.findall(r"^USER (\d+)$", (ROOT / "docker" / name).read_text(), flags=re.M))
    return int(user)


def test_every_container_runs_as_non_root_on_a_read_only_root(overlay):
    _, objects = overlay
    for workload in workloads(objects):
        spec = pod_spec(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] != 0
        c = container(workload)
        security = c["securityContext"]
        assert security["readOnlyRootFilesystem"] is True, c["name"]
        assert security["allowPrivilegeEscalation"] is False and security["capabilities"]["drop"] == ["ALL"]
        mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
        if c["image"].startswith("crossrank-"):
            assert "/tmp" in mounts, c["name"]
    for name, dockerfile in (("crossrank-worker", "worker.Dockerfile"), ("crossrank-pipeline", "pipeline.Dockerfile")):
        user = pod_spec(one(objects, "Deployment", name))["securityContext"]["runAsUser"]
        assert user == dockerfile_user(dockerfile), "the image's own user"


def test_the_worker_writes_only_to_its_volumes(overlay, monkeypatch):
    """The model cache and the ONNX cache are mounted folders (the root filesystem is read-only)."""
    _, objects = overlay
    c = worker(objects)
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    assert env_values(c)["HF_HOME"] in mounts
    onnx = worker_settings(c, monkeypatch).onnx_cache.replace("~", "/home/crossrank")
    assert any(onnx.startswith(m + "/") for m in mounts), onnx


def test_network_policies_admit_only_the_ports_pods_serve(overlay):
    """Each pod is under the default deny; the ports admitted to it are exactly the ports it names."""
    _, objects = overlay
    policies = find(objects, "NetworkPolicy")
    assert any(p["spec"]["podSelector"] == {} and "ingress" not in p["spec"] for p in policies), "a default deny"
    for workload in workloads(objects):
        labels = workload["spec"]["template"]["metadata"]["labels"]
        admitted = {
            port["port"]
            for p in policies
            if selects(p["spec"]["podSelector"], labels)
            for rule in p["spec"].get("ingress", [])
            for port in rule["ports"]
        }
        assert admitted == set(port_numbers(container(workload))), workload["metadata"]["name"]
