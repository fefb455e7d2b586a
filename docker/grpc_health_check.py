"""Container healthcheck for a worker: exit 0 when its gRPC health service says SERVING, else 1.

Reads the worker's own settings, so the check follows whatever the container serves:
CROSSRANK_PORT, and with TLS (CROSSRANK_TLS_CERT set) the CA to trust: CROSSRANK_TLS_CA if set,
else the certificate itself (right for a self-signed one). The check dials `localhost`, so the
certificate must name localhost, or HEALTHCHECK_TLS_NAME must give a name it has. The health
service stays open when CROSSRANK_AUTH_TOKEN is set, so no token is needed here.
"""

from __future__ import annotations

import os
import sys

import grpc

from crossrank.common.net import DEFAULT_PORT, health_status


def channel() -> grpc.Channel:
    target = f"localhost:{os.environ.get('CROSSRANK_PORT') or DEFAULT_PORT}"
    cert = os.environ.get("CROSSRANK_TLS_CERT")
    if not cert:
        return grpc.insecure_channel(target)
    with open(os.environ.get("CROSSRANK_TLS_CA") or cert, "rb") as f:
        credentials = grpc.ssl_channel_credentials(root_certificates=f.read())
    name = os.environ.get("HEALTHCHECK_TLS_NAME")
    return grpc.secure_channel(target, credentials, options=[("grpc.ssl_target_name_override", name)] if name else None)


def main() -> int:
    try:
        with channel() as ch:
            status = health_status(ch, timeout=3)
    except grpc.RpcError as exc:
        print(f"unhealthy: {exc.code().name} {exc.details()}", file=sys.stderr)
        return 1
    except OSError as exc:  # an unreadable certificate file
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    if status != "SERVING":
        print(f"unhealthy: {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
