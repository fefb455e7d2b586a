"""Click options for reaching workers, shared by every subcommand that calls one."""

from __future__ import annotations

import functools

import click

from crossrank.client._base import DEFAULT_TARGET


def worker_options(fn):
    """--target, --token, --ca-cert and --timeout, each also read from its CROSSRANK_* variable."""

    @click.option("--target", envvar="CROSSRANK_WORKER_TARGET", default=DEFAULT_TARGET, show_default=True,
                  show_envvar=True, help="Worker address: host:port, a comma-separated list, or dns:///name:port.")
    @click.option("--token", envvar="CROSSRANK_AUTH_TOKEN", default="", show_envvar=True,
                  help="Bearer token, when the worker requires one.")
    @click.option("--ca-cert", envvar="CROSSRANK_TLS_CA", default="", show_envvar=True,
                  help="PEM CA certificate: connect with TLS.")
    @click.option("--timeout", envvar="CROSSRANK_TIMEOUT", type=float, default=60.0, show_default=True,
                  show_envvar=True, help="Deadline per call in seconds, retries included.")
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)

    return wrapper


def client_kwargs(target: str, token: str, ca_cert: str, timeout: float) -> dict:
    return {"target": target, "token": token or None, "ca_cert": ca_cert or None, "timeout": timeout}
