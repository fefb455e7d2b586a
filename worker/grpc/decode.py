"""Requests are parsed inside the handler, so a message that is not valid protobuf is the caller's error.

gRPC's own deserializer turns any parse failure (invalid UTF-8 in a string, a cut-off
message) into INTERNAL, before any code of ours runs. Here the handler gets the raw bytes
and parses them itself: a bad message raises MalformedMessage, which is INVALID_ARGUMENT,
and a stream keeps what it had already received.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from google.protobuf.message import DecodeError

from crossrank.worker.errors import InvalidInputError


class MalformedMessage(InvalidInputError):
    pass


def parse(deserialize: Callable[[bytes], Any], raw: bytes) -> Any:
    try:
        return deserialize(raw)
    except (DecodeError, UnicodeDecodeError, ValueError) as exc:
        raise MalformedMessage(
            f"request is not a valid protobuf message ({len(raw)} bytes: {exc}); check that the client "
            "sends the crossrank.v1 message the method expects, whole and with UTF-8 strings") from exc


async def parse_each(deserialize: Callable[[bytes], Any], raws: AsyncIterator[bytes]) -> AsyncIterator[Any]:
    async for raw in raws:
        yield parse(deserialize, raw)
