"""A gRPC server whose Rerank refuses every call at once (RESOURCE_EXHAUSTED): no model, no queue.

`scripts/overload.py --floor` drives it with the same clients as the worker, in the same run: what its
refusals take is what the load generator, gRPC and this machine cost before any worker does anything.

    python scripts/refusing_server.py PORT
"""

from __future__ import annotations

import asyncio
import sys

import grpc

from crossrank.protos import pb_grpc


class RefuseAll(pb_grpc.RerankerServicer):
    async def Rerank(self, request, context):
        await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "refused at once")


async def serve(port: int) -> None:
    server = grpc.aio.server()
    pb_grpc.add_RerankerServicer_to_server(RefuseAll(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
