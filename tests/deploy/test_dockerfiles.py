"""The Dockerfiles and .dockerignore, read as text (Docker cannot run here), and the worker's
container healthcheck script run for real against live workers.

What is checked: stages are named and the ones Compose builds exist; the worker runs on a CUDA base
image and the pipeline and client on a slim Python one without torch; every COPY source exists and
is in the build context, and together they carry the whole installed package; volume mount points
exist in the image for its non-root user; CMDs are real entry points; Flower is installed for the
`monitoring` profile; docker/grpc_health_check.py exits 0 only on a SERVING worker.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support.compose import ROOT, VARIANTS, argv, compose_config, environment, resolve_crossrank

DOCKERFILES = ("docker/worker.Dockerfile", "docker/pipeline.Dockerfile")
HEALTH_CHECK = ROOT / "docker" / "grpc_health_check.py"


# -- a small Dockerfile reader ------------------------------------------------------------------


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)
    args: dict[str, str | None] = field(default_factory=dict)

    def all(self, keyword: str) -> list[str]:
        return [rest for k, rest in self.instructions if k == keyword]

    def last(self, keyword: str) -> str | None:
        found = self.all(keyword)
        return found[-1] if found else None


@dataclass
class Dockerfile:
    global_args: dict[str, str | None]
    stages: list[Stage]

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)

    def base_of(self, stage: Stage) -> str:
        """The image a stage starts from, its ${ARG} resolved to the default."""
        return re.sub(r"\$\{?(\w+)\}?", lambda m: self.global_args.get(m.group(1)) or "", stage.base)


def instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, rest) per instruction: comment lines dropped, continuation lines joined."""
    out, pending = [], ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        keyword, _, rest = (pending + line).strip().partition(" ")
        out.append((keyword.upper(), " ".join(rest.split())))
        pending = ""
    return out


def parse_arg(rest: str) -> tuple[str, str | None]:
    name, eq, default = rest.partition("=")
    return name, default.strip('"') if eq else None


def read_dockerfile(path: str) -> Dockerfile:
    global_args: dict[str, str | None] = {}
    stages: list[Stage] = []
    for keyword, rest in instructions((ROOT / path).read_text(encoding="utf-8")):
        if keyword == "FROM":
            words = rest.split()
            words = [w for w in words if not w.startswith("--platform")]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name))
        elif keyword == "ARG" and not stages:
            global_args.update([parse_arg(rest)])
        elif stages:
            stages[-1].instructions.append((keyword, rest))
            if keyword == "ARG":
                stages[-1].args.update([parse_arg(rest)])
    return Dockerfile(global_args, stages)


def exec_form(rest: str) -> list[str]:
    return json.loads(rest) if rest.startswith("[") else shlex.split(rest)


def copy_sources(rest: str) -> tuple[dict[str, str], list[str], str]:
    """(flags, sources, destination) of a COPY."""
    words = exec_form(rest)
    flags = dict(w[2:].split("=", 1) for w in words if w.startswith("--"))
    paths = [w for w in words if not w.startswith("--")]
    return flags, paths[:-1], paths[-1]


def dockerignore_patterns() -> list[tuple[bool, re.Pattern]]:
    """(is_exception, regex) per .dockerignore line, as Docker matches them (Go's filepath.Match
    plus `**`), relative to the context root."""
    patterns = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        patterns.append((negate, re.compile(regex + r"\Z")))
    return patterns


def in_context(relative: str) -> bool:
    """False when .dockerignore keeps the path (or a folder above it) out of the build context."""
    parts = Path(relative).parts
    excluded = False
    for negate, regex in dockerignore_patterns():
        if any(regex.match("/".join(parts[:n])) for n in range(1, len(parts) + 1)):
            excluded = not negate
    return not excluded


def package_files() -> list[str]:
    """The files an install of the package takes from the source tree: each package's modules and
    its package data, from pyproject.toml's setuptools table."""
    tomllib = pytest.importorskip("tomllib")
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    package_dir = setuptools["package-dir"]
    files = []
    for package in setuptools["packages"]:
        root = max((p for p in package_dir if package == p or package.startswith(p + ".")), key=len)
        folder = ROOT / package_dir[root] / Path(*package[len(root):].split(".")[1:])
        files += [str(f.relative_to(ROOT)) for f in folder.glob("*.py")]
        for pattern in setuptools.get("package-data", {}).get(package, []):
            files += [str(f.relative_to(ROOT)) for f in folder.glob(pattern) if f.is_file()]
    return files


@pytest.fixture(scope="module", params=DOCKERFILES)
def dockerfile(request) -> tuple[str, Dockerfile]:
    return request.param, read_dockerfile(request.param)


# -- stages, bases, targets ---------------------------------------------------------------------


def test_every_stage_is_named(dockerfile):
    path, parsed = dockerfile
    assert len(parsed.stages) >= 2, f"{path}: multi-stage"
    names = [s.name for s in parsed.stages]
    assert all(names) and len(set(names)) == len(names), f"{path}: {names}"


def test_the_worker_runs_on_a_cuda_base_image():
    parsed = read_dockerfile("docker/worker.Dockerfile")
    runtime = parsed.stages[-1]
    image = parsed.base_of(runtime)
    assert image.startswith("nvidia/cuda:"), image
    # The base flavour: torch's wheels bring the CUDA libraries, so runtime/devel would only add size.
    assert "-base-" in image, image
    assert "pip install" not in " ".join(runtime.all("RUN")), "the runtime stage copies the finished venv"
    assert runtime.all("COPY") and any("--from=build" in c for c in runtime.all("COPY"))


def test_the_worker_installs_the_torch_ci_tests():
    parsed = read_dockerfile("docker/worker.Dockerfile")
    version = parsed.stage("build").args["TORCH_VERSION"]
    assert f"torch=={version}" in (ROOT / ".ci" / "run").read_text()


def test_pipeline_and_client_images_are_slim_and_torch_free():
    parsed = read_dockerfile("docker/pipeline.Dockerfile")
    for name in ("pipeline", "client"):
        image = parsed.base_of(parsed.stage(name))
        assert image.startswith("python:") and image.endswith("-slim"), (name, image)
    installs = " ".join(r for s in parsed.stages for r in s.all("RUN"))
    assert "torch" not in installs and "[worker" not in installs and "[dev" not in installs, installs


def test_the_pipeline_image_has_flower_for_the_monitoring_profile():
    """Flower runs from the pipeline image: installed by name, or through an extra that has it."""
    tomllib = pytest.importorskip("tomllib")
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    parsed = read_dockerfile("docker/pipeline.Dockerfile")
    build = next(c for c in parsed.stage("pipeline").all("COPY") if "--from=" in c)
    installs = " ".join(parsed.stage(copy_sources(build)[0]["from"]).all("RUN"))
    chosen = {e.strip() for group in re.findall(r"/src\[([^\]]*)\]", installs) for e in group.split(",")}
    assert "pipeline" in chosen, installs
    from_extras = any(d.startswith("flower") for e in chosen for d in extras.get(e, []))
    assert from_extras or re.search(r"\bflower\b", installs), installs


def test_compose_builds_existing_targets_with_declared_args():
    for files in VARIANTS.values():
        for name, service in compose_config(*files)["services"].items():
            build = service.get("build")
            if not build:
                continue
            assert build["context"] == str(ROOT), name
            parsed = read_dockerfile(build["dockerfile"])
            if "target" in build:
                assert build["target"] in [s.name for s in parsed.stages], (name, build["target"])
            declared = set(parsed.global_args) | {a for s in parsed.stages for a in s.args}
            assert set(build.get("args", {})) <= declared, (name, set(build.get("args", {})) - declared)


# -- the build context --------------------------------------------------------------------------


def test_every_copy_source_exists_in_the_build_context(dockerfile):
    path, parsed = dockerfile
    for stage in parsed.stages:
        for rest in stage.all("COPY") + stage.all("ADD"):
            flags, sources, _ = copy_sources(rest)
            if "from" in flags:
                assert flags["from"] in [s.name for s in parsed.stages], (path, rest)
                continue
            for source in sources:
                assert (ROOT / source).exists(), f"{path}: COPY {source}: no such file"
                assert in_context(source), f"{path}: COPY {source}: .dockerignore leaves it out"


def test_the_images_get_the_whole_package(dockerfile):
    """pip installs from /src: every module and data file of every package must have been copied."""
    path, parsed = dockerfile
    copied = [src for s in parsed.stages for rest in s.all("COPY")
              if "from" not in copy_sources(rest)[0] for src in copy_sources(rest)[1]]
    for needed in ["pyproject.toml", "README.md", *package_files()]:
        assert in_context(needed), f".dockerignore leaves out {needed}"
        assert any(needed == src or needed.startswith(src.rstrip("/") + "/") for src in copied), \
            f"{path} does not copy {needed}"


def test_dockerignore_keeps_bulky_and_secret_things_out():
    for path in (".git/config", ".venv/bin/python", "tests/conftest.py", "docs/deployment.md", ".env",
                 "worker/__pycache__/x.pyc", "crossrank.egg-info/PKG-INFO", "data/chroma/x", "tls/worker.pem"):
        assert not in_context(path), path
    assert in_context("docker/grpc_health_check.py")
    assert in_context("pipeline/sample_data/README.md")


# -- what the containers run --------------------------------------------------------------------


def test_final_stages_run_as_a_user(dockerfile):
    path, parsed = dockerfile
    for stage in (s for s in parsed.stages if s.all("CMD")):  # the images that run
        user = stage.last("USER")
        assert user and user not in ("root", "0"), f"{path}: {stage.name} runs as root"


def test_image_commands_are_real_entry_points(dockerfile):
    path, parsed = dockerfile
    for stage in parsed.stages:
        cmd = stage.last("CMD")
        if cmd is None:
            continue
        entrypoint = stage.last("ENTRYPOINT")
        args = (exec_form(entrypoint) if entrypoint else []) + exec_form(cmd)
        assert args[0] == "crossrank", (path, stage.name, args)
        if args[1:] == ["--help"]:
            continue
        resolve_crossrank(args[1:])


def test_volume_mount_points_exist_for_the_image_user():
    """A fresh named volume takes the owner of the image's folder; the images run as a user."""
    dockerfiles = {"docker/worker.Dockerfile": "runtime", "docker/pipeline.Dockerfile": "pipeline"}
    for files in VARIANTS.values():
        for name, service in compose_config(*files)["services"].items():
            if "build" not in service:
                continue
            stage = read_dockerfile(service["build"]["dockerfile"]).stage(dockerfiles[service["build"]["dockerfile"]])
            runs = " ".join(stage.all("RUN"))
            for volume in service.get("volumes", []):
                target = volume["target"]
                assert f"mkdir -p {target}" in runs and f"chown crossrank {target}" in runs, (name, target)


def test_compose_healthcheck_script_is_the_one_copied():
    stage = read_dockerfile("docker/worker.Dockerfile").stages[-1]
    destinations = {copy_sources(c)[2]: copy_sources(c)[1] for c in stage.all("COPY")}
    for files in VARIANTS.values():
        for name, service in compose_config(*files)["services"].items():
            args = argv(service["healthcheck"]["test"])
            if args[0] == "python" and args[1].endswith(".py"):
                assert destinations.get(args[1]) == ["docker/grpc_health_check.py"], (name, args)


def test_the_worker_image_has_the_health_checks_dependency():
    """grpc_health comes with the worker extra the image installs."""
    tomllib = pytest.importorskip("tomllib")
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(d.startswith("grpcio-health-checking") for d in extras["worker"])
    installs = " ".join(read_dockerfile("docker/worker.Dockerfile").stage("build").all("RUN"))
    assert "[worker]" in installs


# -- the healthcheck script, for real -----------------------------------------------------------


def run_health_check(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CROSSRANK_", "HEALTHCHECK_"))}
    return subprocess.run([sys.executable, str(HEALTH_CHECK)], env={**clean, **env}, capture_output=True,
                          text=True, timeout=30)


def test_health_check_passes_on_a_serving_worker(worker):
    result = run_health_check(CROSSRANK_PORT=str(worker.port))
    assert result.returncode == 0, result.stderr


def test_health_check_fails_when_nothing_listens():
    from crossrank.common.net import free_port

    result = run_health_check(CROSSRANK_PORT=str(free_port()))
    assert result.returncode == 1
    assert "unhealthy: UNAVAILABLE" in result.stderr


def test_health_check_fails_while_the_model_loads(tiny_cross_encoder):
    """Bound but not loaded (as during a first model download): NOT_SERVING, so not healthy yet."""
    from support.workers import worker_settings

    from crossrank.worker.server import create_server

    server = create_server(worker_settings(tiny_cross_encoder), load=False)
    try:
        result = run_health_check(CROSSRANK_PORT=str(server.port))
    finally:
        server.stop(0)
    assert result.returncode == 1
    assert "NOT_SERVING" in result.stderr


def write_certificate(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate (its own CA) for one DNS name."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture(scope="module")
def tls_token_worker(tiny_cross_encoder, tmp_path_factory):
    """A worker as a container with TLS and a token would run it: certificate for `worker` only."""
    from support.workers import worker_settings

    from crossrank.worker.server import create_server

    cert, key = write_certificate(tmp_path_factory.mktemp("tls"), "worker")
    server = create_server(worker_settings(tiny_cross_encoder, tls_cert=str(cert), tls_key=str(key),
                                           auth_token="s3cret"))
    assert server.wait_ready(120), server.engine.load_error
    yield server, cert, key
    server.stop(0)


def test_health_check_speaks_tls_without_the_token(tls_token_worker):
    server, cert, key = tls_token_worker
    env = {"CROSSRANK_PORT": str(server.port), "CROSSRANK_TLS_CERT": str(cert), "CROSSRANK_TLS_KEY": str(key),
           "CROSSRANK_AUTH_TOKEN": "s3cret"}
    # The certificate names `worker`, not `localhost`, which the check dials: verification fails...
    refused = run_health_check(**env)
    assert refused.returncode == 1, refused.stderr
    # ...unless told which name to expect; the CA may also be given on its own.
    assert run_health_check(**env, HEALTHCHECK_TLS_NAME="worker").returncode == 0
    result = run_health_check(**env, HEALTHCHECK_TLS_NAME="worker", CROSSRANK_TLS_CA=str(cert))
    assert result.returncode == 0, result.stderr


def test_health_check_reports_an_unreadable_certificate(worker, tmp_path):
    result = run_health_check(CROSSRANK_PORT=str(worker.port), CROSSRANK_TLS_CERT=str(tmp_path / "missing.crt"))
    assert result.returncode == 1 and "unhealthy" in result.stderr


def test_compose_workers_run_the_health_check_with_their_own_port():
    for files in VARIANTS.values():
        for name, service in compose_config(*files)["services"].items():
            if "grpc_health_check.py" in " ".join(argv(service["healthcheck"]["test"])):
                assert environment(service).get("CROSSRANK_PORT") == "50051", name
