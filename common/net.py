"""What every side needs about reaching a worker: its default address, a free port, and the standard
gRPC health probe."""

from __future__ import annotations

import socket

import grpc

DEFAULT_PORT = 50051
DEFAULT_TARGET = f"localhost:{DEFAULT_PORT}"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the OS's pick)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def health_status(channel: grpc.Channel, timeout: float = 1.0) -> str:
    """The worker's grpc.health.v1 status over `channel` ("SERVING", "NOT_SERVING", ...); raises
    grpc.RpcError when nothing answers. Needs grpcio-health-checking (the worker and pipeline extras)."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout).status
    return health_pb2.HealthCheckResponse.ServingStatus.Name(status)


def serving(address: str, credentials: grpc.ChannelCredentials | None = None, timeout: float = 1.0) -> bool:
    """True when the worker at `address` answers its health check with SERVING."""
    with (grpc.secure_channel(address, credentials) if credentials else grpc.insecure_channel(address)) as channel:
        try:
            return health_status(channel, timeout) == "SERVING"
        except grpc.RpcError:
            return False
