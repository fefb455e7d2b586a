"""docs/kubernetes.md says what deploy/k8s renders: its kubectl commands render the overlays the
tests check, the Secret it creates holds every key the manifests read, the objects and figures it
names are the rendered ones."""

from __future__ import annotations

import re

import pytest
import yaml
from support.compose import resolve_crossrank
from support.kustomize import (
    K8S,
    OVERLAYS,
    SECRET,
    container,
    find,
    overlay_path,
    pod_spec,
    render,
    run_kubectl,
    workloads,
)
from support.markdown import shell_lines
from support.paths import ROOT

from crossrank.pipeline.celery_app import QUEUES

GUIDE = (ROOT / "docs" / "kubernetes.md").read_text(encoding="utf-8")
BENCHMARKS = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
CROSSRANK_NAME = re.compile(r"\bCROSSRANK_[A-Z0-9_]+\b")
# kubectl's resource/name arguments the guide uses, by the kind they name.
KINDS = {
    "deployment": "Deployment",
    "statefulset": "StatefulSet",
    "service": "Service",
    "scaledobject": "ScaledObject",
    "secret": "Secret",
}


def kubectl_lines() -> list[list[str]]:
    return [words for words in shell_lines(GUIDE) if words[0] == "kubectl"]


def kustomize_path(words: list[str]) -> str | None:
    """The folder a `kubectl kustomize DIR` or `kubectl ... -k DIR` line renders."""
    if words[1] == "kustomize":
        return words[2]
    return words[words.index("-k") + 1] if "-k" in words else None


def all_objects() -> list[dict]:
    return [o for overlay in OVERLAYS for o in render(overlay_path(overlay))]


def namespace() -> str:
    (found,) = {o["metadata"]["namespace"] for o in all_objects()}
    return found


def test_the_guide_renders_every_overlay_and_nothing_else():
    paths = {kustomize_path(words) for words in kubectl_lines()} - {None}
    assert paths == {overlay_path(overlay) for overlay in OVERLAYS}


@pytest.mark.parametrize("words", [w for w in kubectl_lines() if w[1] == "kustomize"], ids=" ".join)
def test_kustomize_lines_run_as_written(words):
    result = run_kubectl(*words[1:])
    assert result.returncode == 0, result.stderr
    assert [d for d in yaml.safe_load_all(result.stdout) if d] == render(words[2])


def test_the_secret_the_guide_creates_holds_every_key_the_manifests_read():
    """Its own command, run by kubectl without a cluster (client-side dry run)."""
    import kubernetes_validate

    (words,) = [w for w in kubectl_lines() if w[1:4] == ["create", "secret", "generic"]]
    result = run_kubectl(*words[1:], "--dry-run=client", "--output=yaml")
    assert result.returncode == 0, result.stderr
    secret = yaml.safe_load(result.stdout)
    kubernetes_validate.validate(secret, kubernetes_validate.utils.latest_version(), strict=True)
    assert (secret["metadata"]["name"], secret["metadata"]["namespace"]) == (SECRET, namespace())
    required, optional = set(), set()
    for workload in workloads(all_objects()):
        for entry in container(workload).get("env", []):
            ref = entry.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["name"] == SECRET
                (optional if ref.get("optional") else required).add(ref["key"])
    for auth in find(all_objects(), "TriggerAuthentication"):
        required |= {ref["key"] for ref in auth["spec"]["secretTargetRef"]}
    assert set(secret["data"]) == required, "the guide creates exactly the keys a pod needs"
    for key in optional:
        assert f"`{key}`" in GUIDE, f"the optional key {key} is explained"


def test_kubectl_lines_name_rendered_objects_in_the_namespace():
    objects = all_objects()
    names = {(o["kind"], o["metadata"]["name"]) for o in objects} | {("Secret", SECRET)}
    for words in kubectl_lines():
        for flag in ("-n", "--namespace"):
            if flag in words:
                assert words[words.index(flag) + 1] == namespace(), words
        if words[1:3] == ["create", "namespace"]:
            assert words[3] == namespace()
        for kind, name in re.findall(r"\b([a-z]+)/([a-z-]+)\b", " ".join(words[1:])):
            if kind in KINDS:
                assert (KINDS[kind], name) in names, words
        if words[1] == "annotate":
            assert (KINDS[words[4]], words[5]) in names, words


def test_the_object_table_names_rendered_objects():
    rows = re.findall(r"^\| `(crossrank-[a-z]+)` \| ([A-Za-z, ()]+) \|", GUIDE, flags=re.M)
    assert rows
    names = {(o["kind"], o["metadata"]["name"]) for o in all_objects()}
    for name, kinds in rows:
        for kind in re.findall(r"[A-Z][A-Za-z]+", kinds):
            assert (kind, name) in names, (kind, name)


def scaled(objects: list[dict], target: str) -> dict:
    (found,) = [so for so in find(objects, "ScaledObject") if so["spec"]["scaleTargetRef"]["name"] == target]
    return found["spec"]


def test_the_guide_s_autoscaling_figures_are_the_manifests():
    figures = dict(re.findall(r"^\| `(\w+)` \| (\d+) \|", GUIDE, flags=re.M))
    for overlay in OVERLAYS:
        objects = render(overlay_path(overlay))
        (trigger,) = scaled(objects, "crossrank-worker")["triggers"]
        assert figures[overlay] == trigger["metadata"]["threshold"], overlay
        assert f"`{trigger['metadata']['query']}`" in GUIDE
        for trigger in scaled(objects, "crossrank-pipeline")["triggers"]:
            assert figures[trigger["metadata"]["listName"]] == trigger["metadata"]["listLength"]
        for target in ("crossrank-worker", "crossrank-pipeline"):
            spec = scaled(objects, target)
            assert f"between {spec['minReplicaCount']} and {spec['maxReplicaCount']}" in GUIDE, target
        down = scaled(objects, "crossrank-worker")["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]
        (policy,) = down["policies"]
        assert (policy["type"], policy["value"]) == ("Pods", 1)
        phrase = f"waits {down['stabilizationWindowSeconds'] // 60} minutes and removes one pod every "
        assert phrase + f"{policy['periodSeconds'] // 60} minutes" in GUIDE
    assert {q for q in QUEUES if q in figures} == set(QUEUES)


def test_the_guide_s_drain_figures_are_the_manifests():
    from crossrank.worker.settings import WorkerSettings

    for overlay in OVERLAYS:
        objects = render(overlay_path(overlay))
        (worker,) = find(objects, "Deployment", "crossrank-worker")
        (pipeline,) = find(objects, "Deployment", "crossrank-pipeline")
        c = container(worker)
        startup = c["startupProbe"]
        strategy = worker["spec"]["strategy"]["rollingUpdate"]
        for phrase in (
            f"terminationGracePeriodSeconds: {pod_spec(worker)['terminationGracePeriodSeconds']}",
            f"serving for {c['lifecycle']['preStop']['sleep']['seconds']} s",
            f"`CROSSRANK_GRACE_SECONDS` ({WorkerSettings.grace_seconds:g} s)",
            f"allows {startup['periodSeconds'] * startup['failureThreshold']} s",
            f"within {pod_spec(pipeline)['terminationGracePeriodSeconds']} s of SIGTERM",
            f"`maxSurge: {strategy['maxSurge']}`",
            f"`maxUnavailable: {strategy['maxUnavailable']}`",
        ):
            assert phrase in GUIDE, phrase


def test_crossrank_lines_use_real_subcommands_and_options():
    lines = [words for words in shell_lines(GUIDE) if words[0] == "crossrank"]
    assert lines
    for words in lines:
        resolve_crossrank(words[1:])


def test_every_crossrank_name_in_the_guide_is_a_real_setting(known_settings):
    used = set(CROSSRANK_NAME.findall(GUIDE))
    assert used and used <= known_settings, sorted(used - known_settings)


def test_files_named_in_the_guide_exist():
    paths = set(re.findall(r"(?<![\w/.-])((?:deploy|docs|worker|pipeline|tests)/[\w./*-]+\.(?:yaml|md|py))", GUIDE))
    assert any(p.startswith("deploy/k8s/") for p in paths)
    for path in paths:
        assert list(ROOT.glob(path)), path


def test_the_guide_s_test_line_runs_every_k8s_test():
    (words,) = [w for w in shell_lines(GUIDE) if w[0] == ".venv/bin/pytest"]
    here = {p.relative_to(ROOT).as_posix() for p in (ROOT / "tests" / "deploy").glob("test_k8s*.py")}
    assert set(words[1:]) == here
    assert K8S.is_dir()


def test_measured_figures_are_the_benchmarks_own():
    """Each pairs/s figure the guide cites (a measurement, not an example) is in docs/benchmarks.md."""
    cited = re.findall(r"\((\d[\d,.]+) pairs/s[^)]*\)", GUIDE)
    cited += re.findall(r"(\d,\d{3})", GUIDE[GUIDE.index("docs/benchmarks.md has the figures") :].split("\n\n")[0])
    assert len(cited) >= 5, cited
    for figure in cited:
        assert figure in BENCHMARKS, figure


def test_in_cluster_addresses_name_services_and_their_ports():
    services = {(o["metadata"]["name"], o["metadata"]["namespace"]): o for o in find(all_objects(), "Service")}
    addresses = re.findall(r"(crossrank-[a-z]+)\.([a-z-]+):(\d+)", GUIDE)
    assert addresses
    for name, space, port in addresses:
        service = services[(name, space)]
        assert int(port) in {p["port"] for p in service["spec"]["ports"]}, (name, port)
