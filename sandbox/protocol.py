"""Framing between host and worker: length-prefixed JSON over pipes.

A frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON (one object).
The host never unpickles anything: it only ``json.loads`` frames of at most :data:`MAX_FRAME`
bytes and treats every byte from a worker as hostile (bad frames kill the worker).

Messages (``type`` field)::

    host -> worker   init   {uid, gid, as_hard_mb, cpu_hard_s, net}      once, at start
    worker -> host   ready  {pid, isolation: {...}}
    host -> worker   run    {job, source, image: {id, width, height} | null,
                             timeout_s, memory_mb, stdout_cap}
    worker -> host   call   {job, tool, image_id, box, args}              a tool request
    host -> worker   reply  {job, ok, result | error}
    worker -> host   result {job, status, answer, error, stdout, timings, recycle}
    host -> worker   exit   {}
"""

from __future__ import annotations

import json
import os
import select
import struct
import time
from typing import Any

#: Largest frame either side accepts, in bytes.
MAX_FRAME = 8 * 1024 * 1024
_HEADER = struct.Struct(">I")


class ChannelClosed(Exception):
    """The other side closed the pipe (the worker died or exited)."""


class ChannelTimeout(Exception):
    """No complete frame arrived before the deadline."""


class ProtocolError(Exception):
    """A malformed, oversized or non-object frame."""


def _no_constants(name: str) -> Any:
    raise ValueError(f"non-standard JSON number {name}")


def encode(message: dict[str, Any]) -> bytes:
    """One frame; ValueError for NaN/±Infinity anywhere in ``message`` (strict JSON only)."""
    data = json.dumps(message, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
    if len(data) > MAX_FRAME:
        raise ProtocolError(f"message too large ({len(data)} > {MAX_FRAME} bytes)")
    return _HEADER.pack(len(data)) + data


def decode(data: bytes) -> dict[str, Any]:
    try:
        msg = json.loads(data.decode("utf-8"), parse_constant=_no_constants)
    except (ValueError, RecursionError, MemoryError) as exc:
        raise ProtocolError(f"bad frame: {type(exc).__name__}") from None
    if type(msg) is not dict or type(msg.get("type")) is not str:
        raise ProtocolError("frame is not a message object")
    return msg


def write_frame(fd: int, message: dict[str, Any], deadline: float | None = None) -> None:
    """Write one frame; with a ``deadline`` (``time.monotonic()`` seconds) never block past it."""
    view = memoryview(encode(message))
    while view:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ChannelTimeout("write deadline passed")
            _, writable, _ = select.select([], [fd], [], remaining)
            if not writable:
                raise ChannelTimeout("write deadline passed")
        try:
            n = os.write(fd, view[:65536])
        except BrokenPipeError:
            raise ChannelClosed("pipe closed") from None
        view = view[n:]


class FrameReader:
    """Reads frames from a pipe fd, buffering partial data; ``read(deadline)`` returns one message."""

    def __init__(self, fd: int, max_frame: int = MAX_FRAME) -> None:
        self.fd = fd
        self.max_frame = max_frame
        self.buf = bytearray()

    def _fill(self, deadline: float | None) -> None:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ChannelTimeout("read deadline passed")
            readable, _, _ = select.select([self.fd], [], [], remaining)
            if not readable:
                raise ChannelTimeout("read deadline passed")
        chunk = os.read(self.fd, 1 << 20)
        if not chunk:
            raise ChannelClosed("pipe closed")
        self.buf += chunk

    def read(self, deadline: float | None = None) -> dict[str, Any]:
        while len(self.buf) < _HEADER.size:
            self._fill(deadline)
        (length,) = _HEADER.unpack_from(self.buf)
        if length > self.max_frame:
            raise ProtocolError(f"frame too large ({length} > {self.max_frame} bytes)")
        while len(self.buf) < _HEADER.size + length:
            self._fill(deadline)
        data = bytes(self.buf[_HEADER.size:_HEADER.size + length])
        del self.buf[:_HEADER.size + length]
        return decode(data)
