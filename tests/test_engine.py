"""The PyStan engine's socket reader (no Stan needed)."""

from __future__ import annotations

import socket
import threading

from shrinksim import engine


def test_socket_reader_keeps_every_stream_but_the_diagnostic_one(tmp_path):
    """Streams are read whole, whatever their size (a 6 MB one exceeds the socket buffer, so
    the writer blocks until the reader drains it), from connections made before and after the
    reader starts polling; the diagnostic stream is dropped."""
    path = str(tmp_path / "chain.sock")
    logger = b'{"version":1,"topic":"logger","values":["info:x"]}\n' * 100
    sample = b'{"version":1,"topic":"sample","values":{"lp__":-1.5}}\n' * 120_000
    diagnostic = b'{"version":1,"topic":"diagnostic","values":{"p_mu":0.1}}\n' * 50_000
    streams: list[bytes] = []
    done = threading.Event()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen(4)
        first = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        first.connect(path)  # pending before the reader runs
        reader = threading.Thread(target=engine._receive, args=(server, done, streams))
        reader.start()
        first.sendall(logger)
        first.close()
        for payload in (sample, diagnostic):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                client.connect(path)
                client.sendall(payload)
        done.set()
        reader.join(timeout=30)
    assert not reader.is_alive()
    assert sorted(streams) == sorted([logger, sample])
