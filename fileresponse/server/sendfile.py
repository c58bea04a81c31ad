"""Bytes of an open file onto a connection with ``sendfile(2)``, after what is already queued.

The kernel copies from the page cache to the socket: no read into Python,
no buffer per chunk. The bytes queued in the transport (the response head,
a multipart boundary) are sent first, so the order on the wire is the order
of the ASGI messages.

- asyncio's loop: ``loop.sendfile``, which empties the transport and then
  calls ``sendfile`` itself.
- uvloop, which has no ``sendfile``: wait until the transport's buffer is
  empty, then call ``os.sendfile`` on a duplicate of the socket's
  descriptor, waiting for writability on that duplicate (uvloop refuses a
  writer on the transport's own descriptor). The duplicate lives for one
  call; each ``sendfile`` sends at most :data:`MAX_CHUNK`.
"""

from __future__ import annotations

import asyncio
import os

__all__ = ["MAX_CHUNK", "send_file"]

#: Most bytes one ``sendfile`` call may send before other connections get a turn (as
#: nginx's ``sendfile_max_chunk``): a fast reader would otherwise hold the loop for a
#: whole file. Measured here with 50 downloads of 10 MiB: 256 KiB to 2 MiB cost the same
#: CPU per GB; the smaller, the shorter a small request waits behind them.
MAX_CHUNK = 512 * 1024


async def send_file(
    loop: asyncio.AbstractEventLoop, transport: asyncio.Transport, fd: int, offset: int, count: int
) -> int:
    """Send ``count`` bytes of ``fd`` from ``offset`` after the transport's queue; the bytes sent.

    Fewer than ``count`` when the file ends first. Raises ``ConnectionError``
    (or ``OSError``) when the connection fails.
    """
    if isinstance(loop, asyncio.BaseEventLoop):
        # closefd=False: the descriptor belongs to the caller.
        with os.fdopen(fd, "rb", buffering=0, closefd=False) as file:
            try:
                return await loop.sendfile(transport, file, offset, count, fallback=False)
            except asyncio.SendfileNotAvailableError:
                # asyncio's name for any error before the first byte (a reset
                # included): the call below raises the error itself.
                pass
    return await _send_on_duplicate(loop, transport, fd, offset, count)


async def _send_on_duplicate(
    loop: asyncio.AbstractEventLoop, transport: asyncio.Transport, fd: int, offset: int, count: int
) -> int:
    socket_fd = transport.get_extra_info("socket").fileno()
    out = os.dup(socket_fd)
    try:
        while transport.get_write_buffer_size():
            # The transport's own writer runs on the same readiness; look again after it.
            await _writable(loop, out)
            await asyncio.sleep(0)
        sent = 0
        while sent < count:
            try:
                done = os.sendfile(out, fd, offset + sent, min(count - sent, MAX_CHUNK))
            except BlockingIOError:
                await _writable(loop, out)
                continue
            if done == 0:
                break
            sent += done
            if done == MAX_CHUNK:
                await asyncio.sleep(0)
        return sent
    finally:
        os.close(out)


async def _writable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    waiter = loop.create_future()
    loop.add_writer(fd, _wake, waiter)
    try:
        await waiter
    finally:
        loop.remove_writer(fd)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
