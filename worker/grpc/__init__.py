"""The worker's gRPC transport: the Reranker servicer, protobuf conversion, interceptors, the server.

Modules here import the `grpc` library by its absolute name; this package never shadows it.
"""
