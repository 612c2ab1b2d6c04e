"""A small TCP proxy run as its own process, for object-store faults: slow, stalled or killed.

``python -m tests.portal.tcp_proxy LISTEN_PORT TARGET_PORT [--delay S] [--chunk N] [--stall-after N]``
forwards 127.0.0.1:LISTEN_PORT to 127.0.0.1:TARGET_PORT. ``--delay`` sleeps before each chunk
(at most ``--chunk`` bytes) it forwards to the server: a slow link. ``--stall-after`` stops
forwarding a connection's request bytes after that many, prints ``stalled`` and holds the
connection open: an upload caught mid-way, for the test to kill a process then. Prints
``ready`` once listening. Loopback only.
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
import time


def _pipe(source: socket.socket, sink: socket.socket, *, delay: float, chunk: int, stall_after: int | None) -> None:
    sent = 0
    try:
        while data := source.recv(chunk):
            if stall_after is not None and sent + len(data) > stall_after:
                sink.sendall(data[: max(stall_after - sent, 0)])
                print("stalled", flush=True)
                time.sleep(3600)  # until the test kills this process
            if delay:
                time.sleep(delay)
            sink.sendall(data)
            sent += len(data)
    except OSError:
        pass
    finally:
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _serve(client: socket.socket, target_port: int, options: argparse.Namespace) -> None:
    try:
        upstream = socket.create_connection(("127.0.0.1", target_port), timeout=5)
    except OSError:
        client.close()
        return
    upstream.settimeout(None)
    threading.Thread(target=_pipe, args=(client, upstream), daemon=True,
                     kwargs={"delay": options.delay, "chunk": options.chunk, "stall_after": options.stall_after}).start()
    threading.Thread(target=_pipe, args=(upstream, client), daemon=True,
                     kwargs={"delay": 0.0, "chunk": 65536, "stall_after": None}).start()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("listen_port", type=int)
    parser.add_argument("target_port", type=int)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--chunk", type=int, default=65536)
    parser.add_argument("--stall-after", type=int, default=None)
    options = parser.parse_args()
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", options.listen_port))
    server.listen(64)
    print("ready", flush=True)
    while True:
        client, _ = server.accept()
        _serve(client, options.target_port, options)


if __name__ == "__main__":
    sys.exit(main())
