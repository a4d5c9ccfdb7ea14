"""Posting event documents the way openlineage-python's ``HttpTransport`` does, on one kept-alive connection.

The client's transport posts each event through a ``requests`` session: besides serialising the
event again (``Serde.to_json``'s recursive walk), every call merges the session's settings with the
environment (proxy variables, ``NO_PROXY``, ``.netrc``, CA bundle variables), which cost more CPU per
event than building the document.  :class:`HttpPoster` sends the same request (same URL and
endpoint, the ``Content-Type``, ``Authorization`` from the transport's token provider and custom
headers, gzip when ``compression: gzip``, the same body text, the configured timeout and certificate
verification) as one HTTP/1.1 exchange on a socket kept open between events, reading each response to
its end (``Content-Length``, chunked, or to the end of the connection) with the few lines of parsing a
status and a body length need.  Measured per POST on one kept-alive connection to a local server:
this reader ~60 us CPU, ``http.client``'s response object (its header parsing through ``email``)
~200 us, h11's state machine ~230 us; a step ships two events, so a protocol library here would
spend a sixth of the 2 ms per-step budget on reading two empty ``201`` answers.  The request side is
small and fixed (one POST, headers checked for CR/LF/NUL), and anything unusual (proxies, client
certificates, redirects...) goes through the client's own transport (see below).

It is used only where it sends what the client would: :func:`http_poster` declines (and the client's
transport is used) for a subclass of the transport, a session or adapter given to the transport, a
client certificate, a proxy that applies to the URL, or a ``.netrc`` file (``requests`` would take
credentials from it).  A redirect is handed to the client's transport, which follows it, and the
client's transport is used from then on.

Retries: the client retries a failed POST within the call (``retry``: 5 times on 500-504 or a broken
connection, with backoff); here a failure is raised at once and the outbox retries the row with its
own backoff (:func:`governance.openlineage.backoff`), so nothing waits inside the shipper's round.
A kept-alive connection the server closed while idle is reopened once, on the same event.
"""

from __future__ import annotations

import gzip
import http.client
import io
import os
import socket
import ssl
import struct
import sys
import urllib.request
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urljoin, urlsplit

from governance.openlineage._events import serialised

__all__ = ["HttpPoster", "http_poster"]

_RECONNECT = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


def _netrc_present() -> bool:
    explicit = os.environ.get("NETRC")
    if explicit:
        return True
    try:
        home = Path.home()
    except RuntimeError:
        return False
    return any((home / name).is_file() for name in (".netrc", "_netrc"))


def _proxied(scheme: str, host: str) -> bool:
    proxies = urllib.request.getproxies()
    if not (proxies.get(scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass(host)


def _ssl_context(verify: bool | str) -> ssl.SSLContext:
    """Certificate checks as ``requests`` makes them: its CA bundle (``REQUESTS_CA_BUNDLE``,
    ``CURL_CA_BUNDLE``, else certifi's), a given bundle file or directory, or none (``verify: false``)."""
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if isinstance(verify, str):
        where = verify
    else:
        import certifi

        where = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or certifi.where()
    if Path(where).is_dir():
        return ssl.create_default_context(capath=where)
    return ssl.create_default_context(cafile=where)


def http_poster(transport: Any) -> HttpPoster | None:
    """A poster for the client's ``HttpTransport`` ``transport``, or None where it would not send the
    same request (see the module's docstring)."""
    try:
        from openlineage.client.transport.http import HttpCompression, HttpTransport
    except ImportError:
        return None
    if type(transport) is not HttpTransport:
        return None
    config = transport.config
    if config.session is not None or config.adapter is not None or transport.cert is not None:
        return None
    target = urlsplit(urljoin(transport.url, transport.endpoint))
    if target.scheme not in ("http", "https") or not target.hostname or target.username is not None \
            or _netrc_present() \
            or _proxied(target.scheme, target.hostname):
        return None
    try:
        return HttpPoster(transport, target.geturl(), gzip=transport.compression == HttpCompression.GZIP)
    except UnicodeEncodeError:  # a host or path beyond Latin-1 (an IDN host): the client encodes it
        return None


_MAX_LINE = 65536
_MAX_HEADERS = 100


def _line(reader: BinaryIO) -> bytes:
    line = reader.readline(_MAX_LINE + 1)
    if not line:
        raise http.client.RemoteDisconnected("Remote end closed connection without response")
    if len(line) > _MAX_LINE:
        raise http.client.LineTooLong("header line")
    return line


def _status(line: str) -> tuple[str, int, str]:
    version, _, rest = line.rstrip("\r\n").partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/") or not code.isdigit():
        raise http.client.BadStatusLine(f"{version} {rest}"[:200])
    return version, int(code), reason


def _fields(lines: list[str]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    return fields


def _head(reader: BinaryIO) -> tuple[str, int, str, dict[str, str]]:
    """One response's status line and header fields.  A head the reader already holds whole (one
    receive, the usual case) is split at once; any other is read line by line."""
    buffered = reader.peek(1)  # type: ignore[attr-defined]  # a BufferedReader: what it holds, else one receive
    end = buffered.find(b"\r\n\r\n")
    if end >= 0:
        block = buffered[:end]
        lines = block.decode("latin-1").split("\r\n")
        if block.count(b"\n") == len(lines) - 1 and len(lines) <= _MAX_HEADERS + 1:  # CRLF lines only
            version, status, reason = _status(lines[0])
            reader.read(end + 4)
            return version, status, reason, _fields(lines[1:])
    version, status, reason = _status(_line(reader).decode("latin-1"))
    lines = []
    for _ in range(_MAX_HEADERS + 1):
        line = _line(reader)
        if line in (b"\r\n", b"\n"):
            break
        lines.append(line.decode("latin-1"))
    else:
        raise http.client.HTTPException(f"got more than {_MAX_HEADERS} headers")
    return version, status, reason, _fields(lines)


def _read_response(reader: BinaryIO) -> tuple[int, str, bool]:
    """Read one response (interim 1xx responses skipped) to its end: status, reason, and whether the
    connection stays open for the next request."""
    while True:
        version, status, reason, fields = _head(reader)
        if status >= 200:
            break
    connection = fields.get("connection", "").lower()
    keep = "close" not in connection and (version != "HTTP/1.0" or "keep-alive" in connection)
    if status in (204, 304):
        return status, reason, keep
    if "chunked" in fields.get("transfer-encoding", "").lower():
        _skip_chunks(reader)
    elif "content-length" in fields:
        length = int(fields["content-length"])
        if len(reader.read(length)) != length:
            raise http.client.IncompleteRead(b"")
    else:  # the body runs to the end of the connection
        reader.read()
        keep = False
    return status, reason, keep


def _skip_chunks(reader: BinaryIO) -> None:
    while True:
        size = int(_line(reader).split(b";", 1)[0].strip(), 16)
        if size == 0:
            while _line(reader) not in (b"\r\n", b"\n"):  # trailers
                pass
            return
        if len(reader.read(size + 2)) != size + 2:
            raise http.client.IncompleteRead(b"")


class _TimedReader(io.RawIOBase):
    """A plain connection's reads for a ``BufferedReader`` when the kernel enforces the timeout
    (:func:`_kernel_timeouts`): a read that waited the timeout out raises ``TimeoutError``, as a
    socket with a Python timeout does."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self._sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            return self._sock.recv_into(buffer)
        except BlockingIOError as exc:  # SO_RCVTIMEO elapsed
            raise TimeoutError("timed out") from exc


def _kernel_timeouts(sock: socket.socket, seconds: float) -> bool:
    """Put a plain (not TLS) connection in blocking mode with its timeout enforced by the kernel
    (``SO_RCVTIMEO``/``SO_SNDTIMEO``, Linux): each send or receive is then one system call.  With a
    Python-level timeout each is a ``poll`` and the call, and each of those gives up the GIL, which the
    step's thread takes and hands back only at its next switch interval: half the hand-overs per
    event.  False (the socket keeps its Python timeout) where that cannot be set."""
    whole = int(seconds)
    micro = round((seconds - whole) * 1_000_000)
    if not sys.platform.startswith("linux") or seconds <= 0 or (whole == 0 and micro == 0):
        return False
    try:
        timeval = struct.pack("@ll", whole, micro)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)
    except (OSError, struct.error, OverflowError):
        return False
    sock.settimeout(None)
    return True


class HttpPoster:
    """POSTs serialised event documents to the transport's endpoint on one kept-alive connection.
    Not thread-safe: one per shipper (each shipper thread or ``sync`` builds its own)."""

    def __init__(self, transport: Any, url: str, *, gzip: bool) -> None:
        self.transport = transport
        self.url = url
        target = urlsplit(url)
        self._https = target.scheme == "https"
        self._host = target.hostname or ""
        self._port = target.port or (443 if self._https else 80)
        self._netloc = target.netloc
        self._path = (target.path or "/") + (f"?{target.query}" if target.query else "")
        self._gzip = gzip
        self._timeout = float(transport.timeout)
        self._context = _ssl_context(transport.verify) if self._https else None
        self._conn: tuple[socket.socket, BinaryIO] | None = None
        self._redirected = False
        self._start = (f"POST {self._path} HTTP/1.1\r\nHost: {self._netloc}\r\nUser-Agent: ml-governance\r\n"
                       "Content-Length: ").encode("latin-1")
        self._blocks: dict[tuple[tuple[str, str], ...], bytes] = {}

    def __call__(self, doc: dict[str, Any]) -> None:
        self.post(doc, serialised(doc))

    def post(self, doc: dict[str, Any], text: str) -> None:
        """Deliver one event (``text`` is ``doc`` serialised as the client would); raises on failure."""
        if self._redirected:
            self.transport.emit(doc)
            return
        body = text.encode("utf-8")
        headers = {"Content-Type": "application/json"}
        bearer = self.transport.config.auth.get_bearer()
        if bearer:
            headers["Authorization"] = bearer
        headers.update(self.transport.config.custom_headers)
        if self._gzip:
            headers["Content-Encoding"] = "gzip"
            body = gzip.compress(body, compresslevel=3)  # the client's level
        status, reason = self._send(body, headers)
        if 300 <= status < 400:  # the client's transport follows redirects; let it, from now on
            self._redirected = True
            self.close()
            self.transport.emit(doc)
            return
        if status >= 400:
            raise RuntimeError(f"{status} {reason} for url: {self.url}")

    def _header_block(self, headers: dict[str, str]) -> bytes:
        """The request's header lines after ``Content-Length``, checked for CR/LF/NUL, encoded (the last
        few kept: the same headers go with every event)."""
        key = tuple(headers.items())
        found = self._blocks.get(key)
        if found is None:
            lines = []
            for name, value in key:
                if any(c in f"{name}{value}" for c in "\r\n\0") or ":" in name:
                    raise ValueError(f"transport headers: invalid header {name!r}")
                lines.append(f"{name}: {value}\r\n")
            if len(self._blocks) >= 8:  # e.g. a rotating bearer token
                self._blocks.clear()
            found = self._blocks[key] = ("".join(lines) + "\r\n").encode("latin-1")
        return found

    def _send(self, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        request = b"".join((self._start, str(len(body)).encode(), b"\r\n", self._header_block(headers), body))
        reused = self._conn is not None
        try:
            return self._exchange(request)
        except _RECONNECT:
            self.close()
            if not reused:
                raise
        return self._exchange(request)  # the server closed the idle connection: once more, afresh

    def _exchange(self, request: bytes) -> tuple[int, str]:
        if self._conn is None:
            sock = socket.create_connection((self._host, self._port), timeout=self._timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            reader: BinaryIO
            if self._context is not None:
                sock = self._context.wrap_socket(sock, server_hostname=self._host)
                reader = sock.makefile("rb")
            elif _kernel_timeouts(sock, self._timeout):
                reader = io.BufferedReader(_TimedReader(sock))
            else:
                reader = sock.makefile("rb")
            self._conn = (sock, reader)
        sock, reader = self._conn
        try:
            try:
                sock.sendall(request)
            except BlockingIOError as exc:  # SO_SNDTIMEO elapsed (a Python timeout raises TimeoutError)
                raise TimeoutError("timed out") from exc
            status, reason, keep = _read_response(reader)
        except BaseException:
            self.close()
            raise
        if not keep:
            self.close()
        return status, reason

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn[1].close()
            conn[0].close()
