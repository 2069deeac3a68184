"""A MongoDB wire proxy that kills a client process (SIGKILL) at an exact command.

Some crash points have no fault-injection hook in the code (a completion's Firework writes and
its workflow commit, ``delete_wflows``' deletes). To stop a real process between two of its
writes, the test points that process at this proxy: every client message is parsed (``OP_MSG``:
the command document and its document sequences) and, when the rule matches, the process is
killed with SIGKILL *before* the message reaches the server. The server never sees that command,
exactly as if the process had died just before sending it.
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import bson

OP_MSG = 2013


@dataclass
class Command:
    """One client command: its name, its target collection, the command document and its
    document sequences (``updates``, ``documents``, ``deletes`` of a bulk write)."""

    name: str
    collection: Any
    doc: dict[str, Any]
    sequences: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def items(self, key: str) -> list[dict[str, Any]]:
        """The write items (``updates``/``deletes``/``documents``), inline or as a sequence."""
        return list(self.doc.get(key) or []) + self.sequences.get(key, [])


def parse_op_msg(body: bytes) -> Command | None:
    """The command of an ``OP_MSG`` body (after the 16-byte header), or None."""
    pos = 4  # flagBits
    doc: dict[str, Any] | None = None
    seqs: dict[str, list[dict[str, Any]]] = {}
    end = len(body)
    flags = struct.unpack_from("<I", body, 0)[0]
    if flags & 1:  # checksumPresent
        end -= 4
    while pos < end:
        kind = body[pos]
        pos += 1
        if kind == 0:
            size = struct.unpack_from("<i", body, pos)[0]
            doc = bson.decode(body[pos : pos + size])
            pos += size
        elif kind == 1:
            size = struct.unpack_from("<i", body, pos)[0]
            sec_end = pos + size
            nul = body.index(b"\x00", pos + 4)
            ident = body[pos + 4 : nul].decode()
            p = nul + 1
            items = []
            while p < sec_end:
                n = struct.unpack_from("<i", body, p)[0]
                items.append(bson.decode(body[p : p + n]))
                p += n
            seqs[ident] = items
            pos = sec_end
        else:
            return None
    if not doc:
        return None
    name = next(iter(doc))
    return Command(name, doc[name], doc, seqs)


class KillProxy:
    """Forwards TCP connections to ``upstream``; kills ``pid`` at the first command ``rule``
    accepts (set both with :meth:`arm`). ``killed`` holds that command once it happened."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._srv = socket.create_server(("127.0.0.1", 0))
        self.port = self._srv.getsockname()[1]
        self._rule: Callable[[Command], bool] | None = None
        self._pid: int | None = None
        self.killed: Command | None = None
        self._lock = threading.Lock()
        self._closing = False
        self._socks: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self, pid: int, rule: Callable[[Command], bool]) -> None:
        with self._lock:
            self._pid, self._rule, self.killed = pid, rule, None

    def uri_for(self, uri: str) -> str:
        """``uri`` with its host and port replaced by the proxy's, connected directly (the
        server describes itself as a replica set member: without ``directConnection`` the
        client would go to the address the server advertises, around the proxy)."""
        parts = urlsplit(uri)
        cred = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
        query = "&".join(q for q in (parts.query, "directConnection=true") if q)
        return urlunsplit(
            parts._replace(
                netloc=f"{cred}127.0.0.1:{self.port}", path=parts.path or "/", query=query
            )
        )

    def close(self) -> None:
        self._closing = True
        self._srv.close()
        for s in list(self._socks):
            with suppress(OSError):
                s.close()

    # -- plumbing ---------------------------------------------------------------------------
    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self._srv.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            self._socks += [client, server]
            threading.Thread(target=self._up, args=(client, server), daemon=True).start()
            threading.Thread(target=self._down, args=(server, client), daemon=True).start()

    @staticmethod
    def _recv_exact(s: socket.socket, n: int) -> bytes | None:
        buf = bytearray()
        while len(buf) < n:
            chunk = s.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return bytes(buf)

    def _up(self, client: socket.socket, server: socket.socket) -> None:
        """Client -> server, one whole message at a time (so a kill lands between messages)."""
        try:
            while True:
                header = self._recv_exact(client, 16)
                if header is None:
                    break
                length, _, _, opcode = struct.unpack("<iiii", header)
                body = self._recv_exact(client, length - 16)
                if body is None:
                    break
                if opcode == OP_MSG and self._should_kill(body):
                    break
                server.sendall(header + body)
        except OSError:
            pass
        finally:
            for s in (client, server):
                with suppress(OSError):
                    s.close()

    def _should_kill(self, body: bytes) -> bool:
        with self._lock:
            if self._rule is None or self._pid is None:
                return False
            cmd = parse_op_msg(body)
            if cmd is None or not self._rule(cmd):
                return False
            os.kill(self._pid, signal.SIGKILL)
            self.killed = cmd
            self._rule = None
            return True

    @staticmethod
    def _down(server: socket.socket, client: socket.socket) -> None:
        try:
            while True:
                data = server.recv(65536)
                if not data:
                    break
                client.sendall(data)
        except OSError:
            pass
        finally:
            for s in (client, server):
                with suppress(OSError):
                    s.close()


@contextmanager
def kill_proxy(uri: str) -> Iterator[KillProxy]:
    """A :class:`KillProxy` in front of the server of ``uri``."""
    parts = urlsplit(uri)
    proxy = KillProxy((parts.hostname or "127.0.0.1", parts.port or 27017))
    try:
        yield proxy
    finally:
        proxy.close()
