"""deploy/k8s renders with kubectl's own kustomize, and every object it renders is valid: the core
ones against the published Kubernetes schemas (kubernetes-validate, offline), KEDA's custom
resources by what they must refer to, since no schema of theirs ships with either tool."""

from __future__ import annotations

import pytest
from support.kustomize import OVERLAYS, SECRET, find, overlay_path, render, workloads

# The oldest Kubernetes the manifests need (the preStop sleep action is on by default from 1.30,
# docs/kubernetes.md), and the newest whose schemas kubernetes-validate ships.
OLDEST = "1.30.0"
CORE_APIS = {"v1", "apps/v1", "policy/v1", "networking.k8s.io/v1"}
KEDA = "keda.sh/v1alpha1"
KEDA_KINDS = {"ScaledObject", "TriggerAuthentication"}
# What each workload kind may be scaled by KEDA through scaleTargetRef.
SCALABLE = {"Deployment", "StatefulSet"}


@pytest.fixture(params=OVERLAYS)
def objects(request) -> list[dict]:
    return render(overlay_path(request.param))


def test_there_are_the_cpu_and_gpu_overlays():
    assert set(OVERLAYS) >= {"cpu", "gpu"}


def test_every_object_lands_in_the_namespace(objects):
    namespaces = {o["metadata"].get("namespace") for o in objects}
    assert namespaces == {"crossrank"}, namespaces


def test_core_objects_validate_against_the_kubernetes_schemas(objects):
    import kubernetes_validate

    core = [o for o in objects if o["apiVersion"] in CORE_APIS]
    assert {o["kind"] for o in core} >= {"Deployment", "StatefulSet", "Service", "PodDisruptionBudget", "NetworkPolicy"}
    for version in (OLDEST, kubernetes_validate.utils.latest_version()):
        for obj in core:
            try:
                # strict: a misspelt or misplaced field is an error, not dropped without a word.
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{version}: {obj['kind']}/{obj['metadata']['name']}: {exc.message} at {list(exc.path)}")


def test_every_object_is_a_core_one_or_keda_s(objects):
    custom = {(o["apiVersion"], o["kind"]) for o in objects if o["apiVersion"] not in CORE_APIS}
    assert custom == {(KEDA, kind) for kind in KEDA_KINDS}, custom


def test_scaled_objects_scale_a_rendered_workload_and_authenticate_with_a_rendered_secret(objects):
    names = {(w["kind"], w["metadata"]["name"]) for w in workloads(objects)}
    auths = {a["metadata"]["name"]: a for a in find(objects, "TriggerAuthentication")}
    scaled = find(objects, "ScaledObject")
    assert scaled
    for so in scaled:
        spec = so["spec"]
        target = spec["scaleTargetRef"]
        assert (target.get("kind", "Deployment"), target["name"]) in names, target
        assert target.get("kind", "Deployment") in SCALABLE
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"], spec
        assert spec["triggers"], so["metadata"]["name"]
        for trigger in spec["triggers"]:
            assert trigger["type"] in ("redis", "prometheus"), trigger
            assert all(isinstance(v, str) for v in trigger["metadata"].values()), "KEDA metadata values are strings"
            ref = trigger.get("authenticationRef")
            if ref:
                assert ref["name"] in auths, ref
    for auth in auths.values():
        for ref in auth["spec"]["secretTargetRef"]:
            assert ref["name"] == SECRET and ref["parameter"] == "password", ref


def test_autoscaled_workloads_leave_replicas_to_the_autoscaler(objects):
    """A `replicas` in the manifest would reset the count KEDA chose on every `kubectl apply`."""
    targets = {so["spec"]["scaleTargetRef"]["name"] for so in find(objects, "ScaledObject")}
    assert targets == {"crossrank-worker", "crossrank-pipeline"}
    for workload in find(objects, "Deployment"):
        name = workload["metadata"]["name"]
        assert (name in targets) == ("replicas" not in workload["spec"]), name


def test_no_config_map_carries_anything(objects):
    """Settings are in the pods' environment, the secrets in a Secret: never a ConfigMap."""
    assert not find(objects, "ConfigMap")
    assert not find(objects, "Secret"), "secrets are created by hand, never committed (docs/kubernetes.md)"
