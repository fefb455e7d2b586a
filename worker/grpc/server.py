"""The gRPC server: the Reranker servicer, health, reflection and interceptors, bound and started."""

from __future__ import annotations

import logging
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from crossrank.protos import SERVICE_NAME, pb_grpc
from crossrank.worker.drain import Drain
from crossrank.worker.engine import Engine
from crossrank.worker.grpc.interceptors import BearerTokenInterceptor, ErrorInterceptor
from crossrank.worker.grpc.reflection import enable_server_reflection
from crossrank.worker.grpc.servicer import RerankerServicer
from crossrank.worker.settings import WorkerSettings

log = logging.getLogger(__name__)


def set_health(servicer: health.HealthServicer, status: int) -> None:
    for name in ("", SERVICE_NAME):
        servicer.set(name, status)


def _credentials(settings: WorkerSettings) -> grpc.ServerCredentials | None:
    if not settings.tls_cert:
        return None
    with open(settings.tls_cert, "rb") as cert, open(settings.tls_key, "rb") as key:
        return grpc.ssl_server_credentials([(key.read(), cert.read())])


def start_grpc_server(engine: Engine, settings: WorkerSettings, drain: Drain
                      ) -> tuple[grpc.Server, int, health.HealthServicer]:
    """Bind and start; health says NOT_SERVING until the caller sets it. Returns (server, port, health)."""
    interceptors: list[grpc.ServerInterceptor] = [ErrorInterceptor(engine.metrics, drain)]
    if settings.auth_token:
        interceptors.insert(0, BearerTokenInterceptor(settings.auth_token, engine.metrics))
    size = settings.max_message_bytes
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=settings.grpc_threads, thread_name_prefix="grpc"),
        interceptors=interceptors,
        options=[("grpc.max_receive_message_length", size), ("grpc.max_send_message_length", size)],
        maximum_concurrent_rpcs=settings.grpc_threads * 4,
    )
    pb_grpc.add_RerankerServicer_to_server(RerankerServicer(engine, drain), server)
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    set_health(health_servicer, health_pb2.HealthCheckResponse.NOT_SERVING)
    enable_server_reflection((SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name), server)
    address = f"{settings.host}:{settings.port}"
    credentials = _credentials(settings)
    port = server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
    if port == 0:
        raise RuntimeError(f"could not bind {address}")
    server.start()
    log.info("listening on %s:%d (%s), loading %s", settings.host, port, "tls" if credentials else "plaintext",
             settings.model)
    return server, port, health_servicer
