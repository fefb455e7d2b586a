"""A gRPC server whose Rerank refuses every call at once (RESOURCE_EXHAUSTED): no model, no queue.

`scripts/overload.py --floor` drives it with the same clients as the worker, in the same run: what its
refusals take is what the load generator, gRPC and this machine cost before any worker does anything.

    python scripts/refusing_server.py PORT [--in-grpc]

By default a handler refuses each call, as a worker's would (its message parsed, a coroutine run).
`--in-grpc` refuses them before any handler runs: grpc.aio's own limit on concurrent calls
(`maximum_concurrent_rpcs`, 1 here, taken by a call the server makes to itself and holds) answers
"Concurrent RPC limit exceeded!" in gRPC's Cython layer, unparsed. No Python server refuses cheaper.
"""

from __future__ import annotations

import argparse
import asyncio

import grpc

from crossrank.protos import pb, pb_grpc

HOLD = "hold this call open"


class RefuseAll(pb_grpc.RerankerServicer):
    async def Rerank(self, request, context):
        if request.query == HOLD:
            await asyncio.Event().wait()  # until the server stops: it takes the one call slot
        await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "refused at once")


async def serve(port: int, in_grpc: bool) -> None:
    server = grpc.aio.server(maximum_concurrent_rpcs=1 if in_grpc else None)
    pb_grpc.add_RerankerServicer_to_server(RefuseAll(), server)
    address = f"127.0.0.1:{port}"
    server.add_insecure_port(address)
    await server.start()
    if in_grpc:  # a call of its own takes the one slot, so gRPC refuses every other; it runs until the end
        channel = grpc.aio.insecure_channel(address)
        held = pb_grpc.RerankerStub(channel).Rerank(pb.RerankRequest(query=HOLD))  # noqa: F841 (kept alive)
    await server.wait_for_termination()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--in-grpc", action="store_true", help="Refuse in gRPC's own call limit, before any handler.")
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.in_grpc))
