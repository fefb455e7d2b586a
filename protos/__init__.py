"""The crossrank.v1 gRPC contract: generated messages and service stubs.

    from crossrank.protos import pb, pb_grpc
"""

from crossrank.protos.crossrank.v1 import reranker_pb2 as pb
from crossrank.protos.crossrank.v1 import reranker_pb2_grpc as pb_grpc

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Reranker"].full_name

__all__ = ["SERVICE_NAME", "pb", "pb_grpc"]
