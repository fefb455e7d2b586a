"""Docker kills a container at its stop period: each worker must have drained and exited by then."""

from __future__ import annotations

import re

import pytest
from support.compose import VARIANTS, argv, compose_config, environment

from crossrank.worker.settings import WorkerSettings

_UNITS = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
# After the grace period the worker stops its engine, answers what is left and exits: a few seconds.
EXIT_SECONDS = 5


def _seconds(duration: str) -> float:
    return sum(float(n) * _UNITS[unit] for n, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration))


@pytest.mark.parametrize("files", sorted(VARIANTS.values()))
def test_stop_period_exceeds_the_worker_grace_period(files):
    services = compose_config(*files)["services"]
    workers = {name: s for name, s in services.items() if argv(s.get("command") or [])[1:2] == ["serve"]}
    assert workers, files
    for name, service in workers.items():
        grace = float(environment(service).get("CROSSRANK_GRACE_SECONDS") or WorkerSettings.grace_seconds)
        stop = _seconds(str(service.get("stop_grace_period", "10s")))  # Compose's default is 10 s
        assert stop >= grace + EXIT_SECONDS, f"{files} {name}: stop_grace_period {stop}s, grace {grace}s"
