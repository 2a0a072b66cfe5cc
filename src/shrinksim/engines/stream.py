"""Reading and parsing what httpstan's ``stan_services`` sampler writes to a Unix socket.

Stan's logger and its three writers (init, sample, diagnostic) each open a connection and
send newline-delimited JSON messages; :func:`receive` reads them all, :func:`parse_draws`
and :func:`logger_messages` parse a chain's draws and log.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time

import numpy as np
import simdjson

_LOGGER_PROGRESS = ("info:Iteration:", "info: Elapsed Time:", "info:" + " " * 15)
"""Starts of Stan's progress reports, dropped from the log messages."""
_POLL_SECONDS = 0.002
"""Reader's sleep after a pass that read little: a 100-group chain sends ~12 MB/s, ~25 KB
per sleep, well within the sender's socket buffer (~200 KB on Linux)."""
_BUSY_BYTES = 1 << 16
"""A pass that read this much is followed by another one at once: a large model's stream
would otherwise fill the socket buffer during the sleep and stall the sampler."""


def receive(server: socket.socket, done: threading.Event, streams: list[bytes]) -> None:
    """Read every connection to ``server`` (Stan's logger and three writers) to EOF.

    Polls, sleeping :data:`_POLL_SECONDS` after a pass that read less than
    :data:`_BUSY_BYTES`, instead of blocking in ``select()``: a reader blocked on the
    socket is woken by each of the thousands of messages a chain sends per second, and those
    wake-ups cost the sampler about 10 % of its time. Runs until ``done`` is set
    (the services call has returned, so every connection it made is pending or open) and
    every connection is read to EOF. Diagnostic messages (unconstrained draws, momenta and
    gradients of every iteration, 3x the size of the draws) are dropped; the other streams
    are appended to ``streams``.
    """
    server.setblocking(False)
    buffers: dict[socket.socket, list[bytes] | None] = {}
    while True:
        finished = done.is_set()  # then this pass sees every connection through to EOF
        with contextlib.suppress(BlockingIOError):
            while True:
                conn, _ = server.accept()
                conn.setblocking(False)
                buffers[conn] = []
        read = sum(_drain(conn, buffers, streams) for conn in list(buffers))
        if finished and not buffers:
            return
        if read < _BUSY_BYTES:
            time.sleep(_POLL_SECONDS)


def _drain(
    conn: socket.socket, buffers: dict[socket.socket, list[bytes] | None], streams: list[bytes]
) -> int:
    """Read what ``conn`` holds; at EOF close it and move its bytes to ``streams``.

    Returns the number of bytes read.
    """
    kept = buffers[conn]
    read = 0
    while True:
        try:
            chunk = conn.recv(1 << 20)
        except BlockingIOError:
            return read
        read += len(chunk)
        if not chunk:
            conn.close()
            del buffers[conn]
            if kept:
                streams.append(b"".join(kept))
            return read
        if kept == [] and chunk.startswith(b'{"version":1,"topic":"diagnostic"'):
            buffers[conn] = kept = None
        elif kept is not None:
            kept.append(chunk)


def parse_draws(stream: bytes) -> tuple[list[str], np.ndarray]:
    """Column names and draws (draws, columns) from a chain's sample-writer stream.

    Draw messages are JSON objects ``{"lp__": ..., ..., "z.1": ...}``; they are parsed as
    one JSON array by simdjson (exact doubles), or by ``json`` where Stan wrote NaN or
    Infinity, which simdjson rejects.
    """
    prefix = b'{"version":1,"topic":"sample","values":{'
    rows = [line[len(prefix) - 1 : -1] for line in stream.split(b"\n") if line.startswith(prefix)]
    if not rows:
        return [], np.empty((0, 0))
    document = b"[" + b",".join(rows) + b"]"
    try:
        parsed = simdjson.Parser().parse(document)
        names = list(parsed[0].keys())
        values = [list(row.values()) for row in parsed]
    except ValueError:
        parsed = json.loads(document)
        names = list(parsed[0])
        values = [list(row.values()) for row in parsed]
    return names, np.array(values, dtype=float)


def logger_messages(stream: bytes) -> list[str]:
    """Stan's log messages of one chain that are not progress reports ("info:" dropped)."""
    out = []
    for line in stream.splitlines():
        try:
            text = str(json.loads(line)["values"][0])
        except (ValueError, KeyError, IndexError):
            continue
        if text.strip() != "info:" and not text.startswith(_LOGGER_PROGRESS):
            out.append(text.removeprefix("info:").strip())
    return out
