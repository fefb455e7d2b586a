"""Server reflection under both of its names: grpc.reflection.v1, which newer clients ask for first
(grpcurl 1.8.8+, grpcui, Postman), and grpc.reflection.v1alpha, which older ones know.

grpcio-reflection implements v1alpha only. v1 is the same protocol: its messages are v1alpha's with
the package renamed, field for field, so one servicer answers both, and v1's file descriptor is made
from v1alpha's so that reflection can also describe the v1 service it lists.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

V1ALPHA_SERVICE_NAME = reflection.SERVICE_NAME
V1_SERVICE_NAME = "grpc.reflection.v1.ServerReflection"
_V1_FILE = "grpc/reflection/v1/reflection.proto"


def _register_v1_file(pool: descriptor_pool.DescriptorPool) -> None:
    try:
        pool.FindFileByName(_V1_FILE)
        return
    except KeyError:
        pass
    old, new = "grpc.reflection.v1alpha", "grpc.reflection.v1"
    file = descriptor_pb2.FileDescriptorProto.FromString(reflection_pb2.DESCRIPTOR.serialized_pb)
    file.name, file.package = _V1_FILE, new
    file.options.Clear()  # v1alpha's language options name v1alpha's packages
    for field in (f for message in file.message_type for f in message.field if f.type_name):
        field.type_name = field.type_name.replace(f".{old}.", f".{new}.")
    for method in file.service[0].method:
        method.input_type = method.input_type.replace(f".{old}.", f".{new}.")
        method.output_type = method.output_type.replace(f".{old}.", f".{new}.")
    pool.Add(file)


def enable_server_reflection(service_names: Iterable[str], server: grpc.Server) -> None:
    """Serve reflection for `service_names` (the reflection services are added to them)."""
    _register_v1_file(descriptor_pool.Default())
    servicer = reflection.ReflectionServicer((*service_names, V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME))
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    v1 = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(V1_SERVICE_NAME,
                                                                          {"ServerReflectionInfo": v1}),))
