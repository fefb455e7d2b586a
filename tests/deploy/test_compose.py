"""docker-compose.yml and its overrides, as Docker Compose resolves them, checked against the code
they start.

Each way of starting the stack (`variant`: GPU, CPU override, one worker per GPU) is resolved by the
pinned `docker-compose config`: merged, interpolated and validated against the Compose
Specification by the real tool. The checks here are what Compose cannot know: each command and
healthcheck runs a real entry point with options it accepts; the CROSSRANK_* variables are real
settings that make valid settings objects; healthchecks, volumes, GPU pinning and
`--scale pipeline=N` are what the deployment needs.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from urllib.parse import urlsplit

import click
import pytest
from support.compose import (
    BASE,
    CPU,
    GPUS,
    ROOT,
    VARIANTS,
    argv,
    compose,
    compose_config,
    environment,
    file_args,
    resolve_celery,
    resolve_crossrank,
)

SERVICES = {"redis", "chroma", "worker", "pipeline", "flower"}
CROSSRANK_NAME = re.compile(r"\bCROSSRANK_[A-Z0-9_]+\b")


def services(model: dict) -> dict[str, dict]:
    return model["services"]


def workers(model: dict) -> dict[str, dict]:
    """The services that run `crossrank serve`."""
    return {name: s for name, s in services(model).items() if argv(s.get("command") or [])[1:2] == ["serve"]}


def published(service: dict) -> list[dict]:
    """Each published port, as Compose normalises it: {host_ip, published, target, ...}."""
    ports = service.get("ports", [])
    for port in ports:
        assert port.get("published"), f"{port}: publish with an explicit host port"
    return ports


# -- Compose accepts the files ------------------------------------------------------------------


@pytest.mark.parametrize("files", sorted(VARIANTS.values()), ids=lambda files: "+".join(files))
@pytest.mark.parametrize("profiles", [(), ("monitoring",)], ids=["default", "monitoring"])
def test_compose_accepts_the_files_without_warnings(files, profiles):
    """Valid against the Compose Specification, and every variable has a default: no .env needed
    (Compose warns "The X variable is not set" otherwise)."""
    result = compose(*file_args(files), *(a for p in profiles for a in ("--profile", p)), "config", "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr


@pytest.mark.parametrize("files", sorted(VARIANTS.values()), ids=lambda files: "+".join(files))
def test_no_variable_is_required(files):
    result = compose(*file_args(files), "config", "--variables", "--format", "json")
    assert result.returncode == 0, result.stderr
    variables = json.loads(result.stdout)
    assert variables, "no variables found"
    assert not [name for name, v in variables.items() if v["Required"]]


def test_the_stack_has_its_services(compose):
    assert set(services(compose)) == SERVICES


def test_overrides_add_no_services_but_worker_copies(variant):
    name, model = variant
    extra = set(services(model)) - SERVICES
    assert extra <= set(workers(model)), f"{name}: {extra}"


# -- commands are the package's entry points ---------------------------------------------------


def check_command(args: list[str]) -> None:
    """A container's argv runs something real, with options that parse."""
    program = args[0]
    if program == "crossrank":
        resolve_crossrank(args[1:])
    elif program == "celery":
        if "flower" in args and importlib.util.find_spec("flower") is None:
            return  # installed in the pipeline image only (test_dockerfiles checks that)
        resolve_celery(args[1:])
    elif program == "chroma":
        chroma = shutil.which("chroma", path=os.pathsep.join([os.path.dirname(sys.executable), os.environ["PATH"]]))
        assert chroma, "chromadb's `chroma` command is missing"
        help_text = subprocess.run([chroma, *args[1:2], "--help"], capture_output=True, text=True).stdout
        for flag in (a for a in args[2:] if a.startswith("--")):
            assert flag in help_text, f"`chroma {args[1]}` has no {flag}"
    elif program == "python":
        if args[1] == "-c":
            compile(args[2], "<healthcheck>", "exec")
        else:
            assert args[1] == "/opt/crossrank/grpc_health_check.py", args  # test_dockerfiles checks it is copied
    elif program in ("redis-server", "redis-cli"):
        pass  # the official redis image's own programs
    else:
        pytest.fail(f"unexpected program {program!r} in {args}")


def test_commands_and_healthchecks_are_real_entry_points(variant):
    name, model = variant
    for service_name, service in services(model).items():
        for command in (service.get("command"), service["healthcheck"]["test"]):
            if command:
                try:
                    check_command(argv(command))
                except click.UsageError as exc:
                    pytest.fail(f"{name}: {service_name}: {command}: {exc.format_message()}")


def test_redis_and_worker_commands_need_their_images(compose):
    assert services(compose)["redis"]["image"].startswith("redis:")
    for name in ("chroma", "pipeline", "flower"):
        assert services(compose)[name]["build"]["dockerfile"] == "docker/pipeline.Dockerfile", name
    assert services(compose)["worker"]["build"]["dockerfile"] == "docker/worker.Dockerfile"


# -- settings ----------------------------------------------------------------------------------


def test_every_crossrank_name_is_a_real_setting(known_settings):
    """Names and values in every resolved variant, the files' own variables, and the health check."""
    used = set(CROSSRANK_NAME.findall((ROOT / "docker" / "grpc_health_check.py").read_text()))
    for files in VARIANTS.values():
        used |= set(CROSSRANK_NAME.findall(json.dumps(compose_config(*files))))
        used |= set(CROSSRANK_NAME.findall(compose(*file_args(files), "config", "--variables").stdout))
    assert used, "no CROSSRANK_* name found: the pattern is wrong"
    assert used <= known_settings, sorted(used - known_settings)


def test_each_service_sets_only_what_it_reads(variant, worker_envvars, pipeline_envvars):
    name, model = variant
    for service_name, service in services(model).items():
        names = {k for k in environment(service) if k.startswith("CROSSRANK_")}
        if service_name in workers(model):
            assert names <= worker_envvars, (name, service_name, names - worker_envvars)
        elif service_name in ("pipeline", "flower"):
            assert names <= pipeline_envvars, (name, service_name, names - pipeline_envvars)
        else:
            assert not names, (name, service_name, names)


def test_worker_environments_make_valid_settings(variant, monkeypatch):
    """Each worker's environment, read by `crossrank serve`'s own options, validates."""
    from crossrank.worker.cli import serve
    from crossrank.worker.settings import WorkerSettings

    name, model = variant
    for service_name, service in workers(model).items():
        with monkeypatch.context() as m:
            for key in [k for k in os.environ if k.startswith("CROSSRANK_")]:
                m.delenv(key)
            for key, value in environment(service).items():
                m.setenv(key, value)
            ctx = serve.make_context("serve", [])
        values = dict(ctx.params)
        values.pop("verbose")  # how serve reports a fatal error, not a setting
        settings = WorkerSettings(**values).validate()
        assert settings.json_logs, "JSON logs for the container's log driver"
        assert (settings.port, settings.host) == (50051, "0.0.0.0"), (name, service_name)
        assert settings.http_port and settings.metrics_port, (name, service_name)
        assert settings.device == ("cpu" if name == "cpu" else "cuda:0"), (name, service_name)


def test_pipeline_environment_makes_valid_settings(variant):
    from crossrank.pipeline.settings import PipelineSettings

    name, model = variant
    for service_name in ("pipeline", "flower"):
        settings = PipelineSettings.from_env(environment(services(model)[service_name]))
        # Several writers: the Chroma server, never an embedded folder in each container.
        assert settings.chroma_url, (name, service_name)
        chroma = urlsplit(settings.chroma_url)
        chroma_argv = argv(services(model)["chroma"]["command"])
        assert chroma.hostname == "chroma" and str(chroma.port) == chroma_argv[chroma_argv.index("--port") + 1]
        redis = urlsplit(settings.redis_url)
        assert (redis.hostname, redis.port) == ("redis", 6379), settings.redis_url
        assert settings.worker_target.startswith("dns:///"), settings.worker_target


def test_the_host_s_settings_do_not_leak_into_the_containers(variant, known_settings):
    """CROSSRANK_* variables exported for the host's CLI and `crossrank up` hold host addresses and
    paths (localhost, ../shared/models/...): with every one of them set, Compose must resolve the
    same model. Only the auth token is one value on both sides."""
    name, _ = variant
    host = {key: f"host-value-of-{key}" for key in known_settings - {"CROSSRANK_AUTH_TOKEN"}}
    leaked = sorted(set(re.findall(r"host-value-of-(\w+)", json.dumps(compose_config(*VARIANTS[name], env=host)))))
    assert not leaked, f"{name}: the containers read the host's {leaked}"


# -- redis, chroma: state on volumes -----------------------------------------------------------


def mounts(service: dict) -> dict[str, str]:
    """Named volume -> path in the container."""
    return {v["source"]: v["target"] for v in service.get("volumes", []) if v["type"] == "volume"}


def test_named_volumes_are_declared_and_used(variant):
    name, model = variant
    declared = set(model.get("volumes") or {})
    used = {source for s in services(model).values() for source in mounts(s)}
    assert used == declared, (name, used ^ declared)
    binds = [(n, v) for n, s in services(model).items() for v in s.get("volumes", []) if v["type"] != "volume"]
    assert not binds, "named volumes, not bind mounts"


def test_redis_persists_an_append_only_file_on_a_volume(compose):
    redis = services(compose)["redis"]
    args = argv(redis["command"])
    assert args[args.index("--appendonly") + 1] == "yes"
    assert "/data" in mounts(redis).values()  # the official image's working directory


def test_chroma_serves_its_data_from_a_volume(compose):
    chroma = services(compose)["chroma"]
    args = argv(chroma["command"])
    assert args[:2] == ["chroma", "run"]
    assert args[args.index("--host") + 1] == "0.0.0.0"
    assert args[args.index("--path") + 1] in mounts(chroma).values()


# -- the worker ---------------------------------------------------------------------------------


def gpu_devices(service: dict) -> list[dict]:
    return service.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])


def test_each_gpu_worker_is_pinned_to_one_gpu(variant):
    name, model = variant
    if name == "cpu":
        assert not any(gpu_devices(s) for s in services(model).values())
        return
    taken = []
    for service_name, service in workers(model).items():
        (device,) = gpu_devices(service)
        assert device["driver"] == "nvidia" and "gpu" in device["capabilities"], service_name
        assert ("device_ids" in device) != ("count" in device), "device_ids or count, not both"
        ids = device.get("device_ids") or []
        assert len(ids) == 1 or device.get("count") == 1, f"{service_name}: one process serves one device"
        taken += ids
        env = environment(service)
        # The container sees its one GPU as device 0, whichever it is on the host.
        assert env["CUDA_VISIBLE_DEVICES"] == "0" and env["CROSSRANK_DEVICE"] == "cuda:0", service_name
    assert len(taken) == len(set(taken)), f"{name}: two workers on one GPU: {taken}"


def test_the_worker_gpu_is_chosen_with_one_variable():
    worker = services(compose_config(BASE, env={"WORKER_GPU": "3"}))["worker"]
    assert gpu_devices(worker)[0]["device_ids"] == ["3"]


def test_workers_cache_models_on_a_shared_volume(variant):
    name, model = variant
    caches = set()
    for service in workers(model).values():
        home = environment(service)["HF_HOME"]
        caches |= {source for source, target in mounts(service).items() if target == home}
    assert len(caches) == 1, f"{name}: one model cache for every worker, got {caches}"


def test_gpu_workers_are_the_same_but_for_their_gpu_and_ports(variant):
    name, model = variant
    found = list(workers(model).values())
    for other in found[1:]:
        assert environment(other) == environment(found[0]), name
        for key in ("image", "build", "command", "volumes", "healthcheck", "restart", "stop_grace_period"):
            assert other.get(key) == found[0].get(key), (name, key)


# -- the pipeline: stateless and scalable --------------------------------------------------------


def test_pipeline_can_be_scaled(variant):
    """`--scale pipeline=N` needs no fixed container name, host port or node name."""
    name, model = variant
    pipeline = services(model)["pipeline"]
    assert not {"container_name", "ports", "hostname"} & set(pipeline), name
    args = argv(pipeline["command"])
    for flag in ("--hostname", "-n"):
        if flag in args:
            assert "%h" in args[args.index(flag) + 1], "a node name must differ per replica (%h)"
    assert not mounts(pipeline), "stateless: no volumes"
    assert "replicas" not in pipeline.get("deploy", {}), "replicas would fight --scale"


def test_pipeline_reaches_every_worker_through_one_balanced_name(variant):
    name, model = variant
    target = environment(services(model)["pipeline"])["CROSSRANK_WORKER_TARGET"]
    host, port = target.removeprefix("dns:///").rsplit(":", 1)
    for service_name, service in workers(model).items():
        names = {service_name, *(service.get("networks", {}).get("default", {}) or {}).get("aliases", [])}
        assert host in names, f"{name}: {service_name} does not answer to {host}"
        assert environment(service)["CROSSRANK_PORT"] == port, service_name


def test_pipeline_healthcheck_pings_its_own_node(compose):
    """`inspect ping` without -d passes if any node answers; each replica must answer for itself,
    under Celery's default node name celery@<container hostname>."""
    args = argv(services(compose)["pipeline"]["healthcheck"]["test"])
    assert args[args.index("-d") + 1] == "celery@$HOSTNAME"
    assert not {"--hostname", "-n"} & set(argv(services(compose)["pipeline"]["command"]))


def test_pipeline_starts_once_its_dependencies_are_healthy(variant):
    name, model = variant
    depends = services(model)["pipeline"]["depends_on"]
    assert {"redis", "chroma", *workers(model)} <= set(depends), name
    assert all(spec["condition"] == "service_healthy" for spec in depends.values()), depends


def test_pipeline_takes_tasks_from_the_app_s_queues(compose):
    from crossrank.pipeline.celery_app import QUEUES

    args = argv(services(compose)["pipeline"]["command"])
    queues = args[args.index("--queues") + 1].split(",")
    assert sorted(queues) == sorted(QUEUES), "every queue needs a consumer, or its jobs wait forever"


def test_pipeline_serves_metrics_inside_the_network(compose):
    args = argv(services(compose)["pipeline"]["command"])
    assert int(args[args.index("--metrics-port") + 1]) > 0


# -- healthchecks, ports, profiles -------------------------------------------------------------


def test_every_service_has_a_healthcheck(variant):
    """Whatever waits on `service_healthy` can become healthy; workers, which load (and first
    download) a model before they turn SERVING, get a start period."""
    name, model = variant
    for service_name, service in services(model).items():
        check = service.get("healthcheck")
        assert check and not check.get("disable"), f"{name}: {service_name} has no healthcheck"
        assert check["test"][0] in ("CMD", "CMD-SHELL"), service_name
    for service_name, service in workers(model).items():
        assert service["healthcheck"].get("start_period"), service_name


def test_host_ports_do_not_clash(variant):
    name, model = variant
    ports = [p["published"] for s in services(model).values() for p in published(s)]
    assert len(ports) == len(set(ports)), f"{name}: {ports}"


def test_unauthenticated_services_publish_on_loopback_only(compose):
    for name in ("redis", "chroma", "flower"):
        for port in published(services(compose)[name]):
            assert port.get("host_ip") == "127.0.0.1", (name, port)


def test_flower_comes_with_the_monitoring_profile_only():
    assert "flower" not in services(compose_config(BASE, profiles=()))
    assert set(services(compose_config(BASE, profiles=()))) == SERVICES - {"flower"}
    assert services(compose_config(BASE, profiles=("monitoring",)))["flower"]["profiles"] == ["monitoring"]


# -- the overrides -----------------------------------------------------------------------------


def test_cpu_override_drops_the_gpu():
    base, cpu = compose_config(BASE), compose_config(BASE, CPU)
    worker = services(cpu)["worker"]
    assert "deploy" not in worker, "the GPU reservation would stop the container without the NVIDIA runtime"
    assert environment(worker)["CROSSRANK_DEVICE"] == "cpu"
    assert environment(worker)["CUDA_VISIBLE_DEVICES"] == ""
    args = worker["build"]["args"]
    assert not args["BASE_IMAGE"].startswith("nvidia/"), args
    assert args["TORCH_INDEX"].endswith("/cpu"), args
    assert worker["image"] != services(base)["worker"]["image"], "its own image tag"
    # Only the worker changes.
    assert {n: s for n, s in services(cpu).items() if n != "worker"} == {
        n: s for n, s in services(base).items() if n != "worker"
    }


def test_gpus_override_adds_one_worker_per_gpu():
    model = compose_config(BASE, GPUS)
    assert set(workers(model)) == {"worker", "worker-1"}
    assert "worker-1" in services(model)["pipeline"]["depends_on"]


# -- the pipeline's command and healthcheck, run for real ----------------------------------------


def healthcheck(test: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """A CMD-SHELL check as the container's shell runs it (Compose prints a literal `$` as `$$`)."""
    assert test[0] == "CMD-SHELL"
    return subprocess.run(["sh", "-c", test[1].replace("$$", "$")], env=env, capture_output=True, text=True, timeout=60)


def test_pipeline_command_and_healthcheck_work_together(private_redis, tmp_path):
    """compose's pipeline command starts a Celery node, its metrics answer, and the healthcheck
    passes for that node (named after the host, as in a container) and fails for any other."""
    from crossrank.common.net import free_port

    metrics_port = free_port()
    service = services(compose_config(BASE, env={"PIPELINE_CONCURRENCY": "1"}))["pipeline"]
    args = argv(service["command"])
    args[args.index("--metrics-port") + 1] = str(metrics_port)  # 9100 may be taken on this machine
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSRANK_")}
    env.update(
        environment(service),
        CROSSRANK_REDIS_URL=private_redis,
        PATH=os.pathsep.join([os.path.dirname(sys.executable), os.environ["PATH"]]),
    )
    log_path = tmp_path / "pipeline.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "crossrank.client", *args[1:]],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        own = {**env, "HOSTNAME": socket.gethostname()}
        deadline = time.monotonic() + 90
        while (result := healthcheck(service["healthcheck"]["test"], own)).returncode != 0:
            assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text() + result.stderr
        assert "pong" in result.stdout
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as response:
            assert "crossrank_pipeline_jobs" in response.read().decode()
        other = healthcheck(service["healthcheck"]["test"], {**env, "HOSTNAME": "another-container"})
        assert other.returncode != 0, other.stdout
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
