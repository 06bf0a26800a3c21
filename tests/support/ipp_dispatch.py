"""IPP operations of a `System` in this process, driven through `dispatch` with real codec
bytes and no socket: the request is encoded and decoded as the server would see it."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from gateway.core.system import System
from gateway.server.operation_table import dispatch
from gateway.server.operations import Endpoint
from ippwire.enums import GroupTag
from ippwire.model import Attribute, Message
from ippwire.reader import decode_message
from ippwire.writer import encode_message

# A client on the gateway's own host: with authentication off, an administrator
# (gateway.policy); pass another `client` to be someone else.
LOCAL_CLIENT = "127.0.0.1:40000"


async def call(system: System, message: Message, document: bytes = b"", *,
               client: str = LOCAL_CLIENT) -> Message:
    async def chunks() -> AsyncGenerator[bytes, None]:
        for start in range(0, len(document), 1000):
            yield document[start:start + 1000]

    # Round-trip the request through the codec as the server would see it.
    decoded, _ = decode_message(encode_message(message))
    reply = await dispatch(system, Endpoint("localhost", 8631, client=client), decoded, chunks)
    response, rest = decode_message(reply)
    assert rest == b""
    assert response.request_id == message.request_id
    return response


def op_attr(response: Message, name: str) -> Attribute | None:
    return response.operation_attributes.get(name)


def job_attr(response: Message, name: str) -> object:
    group = response.group(GroupTag.JOB)
    assert group is not None, response
    attr = group.get(name)
    assert attr is not None, name
    return attr.value
