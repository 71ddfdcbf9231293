"""Reading one HTTP message (a request or a reply) off a raw socket, for tests that
play a misbehaving client or server on loopback."""

from __future__ import annotations

import socket


def read_message(s: socket.socket) -> bytes:
    """The next HTTP message on ``s``: its head and its Content-Length body (b"" if the
    peer closed first; what arrived if it closed midway)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body
