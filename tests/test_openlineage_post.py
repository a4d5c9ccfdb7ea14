"""The outbox's HTTP poster sends what openlineage-python's ``HttpTransport`` sends, and reads any
well-formed response (sized, chunked, to the end of the connection, a redirect) to its end."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from governance.openlineage._events import serialised
from governance.openlineage._post import HttpPoster, http_poster

pytest.importorskip("openlineage.client")

_DOC: dict[str, Any] = {
    "eventType": "START",
    "eventTime": "2024-05-01T10:00:00Z",
    "producer": "https://example.invalid/p",
    "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
    "run": {"runId": "0190a3c2-0000-7000-8000-000000000001", "facets": {"x": {"é": [1, 2.5, True]}}},
    "job": {"namespace": "ns", "name": "credit.train", "facets": {}},
    "inputs": [],
    "outputs": [],
}


class _Recorder:
    """A local server recording each POST (path, headers, body) and answering as ``reply`` says."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, str], bytes]] = []
        self.reply = "sized"
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                recorder.posts.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                mode = recorder.reply
                if mode == "redirect" and self.path != "/moved":
                    self.send_response(307)
                    self.send_header("Location", "/moved")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(500 if mode == "error" else 201)
                if mode == "chunked":
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    self.wfile.write(b"5;ext=1\r\nhello\r\n3\r\n ok\r\n0\r\nX-Trailer: t\r\n\r\n")
                elif mode == "drop":  # answers, then drops the connection without saying so
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    self.close_connection = True
                elif mode == "close":
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(b"no length, to the end")
                    self.close_connection = True
                else:
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"


@contextmanager
def _recorder() -> Iterator[_Recorder]:
    rec = _Recorder()
    thread = threading.Thread(target=rec.httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        rec.httpd.shutdown()
        rec.httpd.server_close()


def _transport(url: str, **extra: Any) -> Any:
    from openlineage.client.transport import get_default_factory

    return get_default_factory().create({"type": "http", "url": url, "endpoint": "api/v1/lineage",
                                         "retry": {"total": 0}, **extra})


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NETRC"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))


@pytest.mark.parametrize("compression", [None, "gzip"])
def test_the_poster_sends_the_clients_request(compression: str | None) -> None:
    extra: dict[str, Any] = {"auth": {"type": "api_key", "apiKey": "s3cret"}, "custom_headers": {"X-Team": "risk"}}
    if compression:
        extra["compression"] = compression
    with _recorder() as rec:
        transport = _transport(rec.url, **extra)
        transport.emit(_DOC)  # the client's own request
        poster = http_poster(_transport(rec.url, **extra))
        assert isinstance(poster, HttpPoster)
        poster.post(_DOC, serialised(_DOC))
        poster(_DOC)
        poster.close()
        transport.close()
    (path, theirs, body), *ours = rec.posts
    assert len(ours) == 2
    for our_path, headers, our_body in ours:
        assert our_path == path == "/api/v1/lineage"
        assert our_body == body if not compression else gzip.decompress(our_body) == gzip.decompress(body)
        for name in ("content-type", "authorization", "x-team", "content-encoding"):
            assert headers.get(name) == theirs.get(name), name
    assert json.loads(gzip.decompress(body) if compression else body) == _DOC


@pytest.mark.parametrize("reply", ["sized", "chunked", "close"])
def test_every_response_is_read_to_its_end_and_the_next_event_follows(reply: str) -> None:
    with _recorder() as rec:
        rec.reply = reply
        poster = http_poster(_transport(rec.url))
        assert poster is not None
        for _ in range(3):
            poster(_DOC)
        poster.close()
    assert len(rec.posts) == 3


class _Scripted:
    """A raw HTTP/1.1 server on one kept-alive connection: reads each request to its end and answers
    with the next scripted reply, written in the pieces given (a pause between them)."""

    def __init__(self, replies: list[list[bytes]]) -> None:
        import socket

        self.replies = replies
        self.requests = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        import time

        conn, _ = self.listener.accept()
        with conn:
            data = b""
            for pieces in self.replies:
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, data = data.partition(b"\r\n\r\n")
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                                  if line.lower().startswith(b"content-length")))
                while len(data) < length:
                    data += conn.recv(65536)
                data = data[length:]
                self.requests += 1
                for i, piece in enumerate(pieces):
                    if i:
                        time.sleep(0.05)
                    conn.sendall(piece)

    def close(self) -> None:
        self.thread.join(5)
        self.listener.close()


_CREATED = b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}"


@pytest.mark.parametrize("reply", [
    [b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}"],  # interim first
    [b"HTTP/1.1 201 Created\r\n", b"Server: x\r\nContent-Length: 2\r\n", b"\r\n{}"],  # head in pieces
    [b"HTTP/1.1 201 Created\nContent-Length: 2\n\n{}"],  # bare line feeds
    [b"HTTP/1.1 201 Created\r\nX-A: 1\nContent-Length: 2\r\n\r\n{}"],  # one bare line feed among CRLFs
    [b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{", b"}"],  # body in pieces
])
def test_any_response_head_is_read_exactly_to_its_end(reply: list[bytes]) -> None:
    server = _Scripted([reply, [_CREATED]])
    poster = http_poster(_transport(server.url))
    assert poster is not None
    poster(_DOC)
    poster(_DOC)  # the same connection: the first response was consumed exactly
    assert poster._conn is not None
    poster.close()
    server.close()
    assert server.requests == 2


@pytest.mark.parametrize(("reply", "error"), [
    (b"HTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", "BadStatusLine"),
    (b"HTTP/1.1 201 Created\r\n" + b"X-A: 1\r\n" * 101 + b"Content-Length: 0\r\n\r\n", "HTTPException"),
])
def test_a_malformed_response_fails_the_event(reply: bytes, error: str) -> None:
    import http.client

    server = _Scripted([[reply]])
    poster = http_poster(_transport(server.url))
    assert poster is not None
    with pytest.raises(http.client.HTTPException) as raised:
        poster(_DOC)
    assert type(raised.value).__name__ == error
    assert poster._conn is None  # never reused after a response it could not read
    server.close()


@pytest.mark.parametrize("body", ["small", "larger than the socket buffers"])
def test_a_backend_that_does_not_answer_times_out_as_configured(body: str) -> None:
    """Neither reading nor answering: the send (a body the buffers cannot hold) or the wait for the
    answer raises TimeoutError after the transport's timeout, and the connection is dropped."""
    import socket
    import sys
    import time

    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[Any] = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True)
    thread.start()
    poster = http_poster(_transport(f"http://127.0.0.1:{listener.getsockname()[1]}", timeout=0.3))
    assert poster is not None
    doc = {**_DOC, "job": {**_DOC["job"], "facets": {"x": "y" * (20_000_000 if body != "small" else 10)}}}
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        poster.post(doc, serialised(doc))
    assert 0.25 < time.monotonic() - start < 5
    assert poster._conn is None
    thread.join(5)
    for conn in accepted:
        conn.close()
    listener.close()
    if sys.platform.startswith("linux"):  # the kernel keeps the time: one system call per send or receive
        with _recorder() as rec:
            fast = http_poster(_transport(rec.url))
            assert fast is not None
            fast(_DOC)
            assert fast._conn is not None and fast._conn[0].gettimeout() is None
            fast.close()


def test_a_failing_backend_raises_with_the_status() -> None:
    with _recorder() as rec:
        rec.reply = "error"
        poster = http_poster(_transport(rec.url))
        assert poster is not None
        with pytest.raises(RuntimeError, match="500"):
            poster(_DOC)
        poster.close()


def test_a_redirect_is_left_to_the_clients_transport() -> None:
    with _recorder() as rec:
        rec.reply = "redirect"
        poster = http_poster(_transport(rec.url))
        assert poster is not None
        poster(_DOC)
        poster(_DOC)  # from now on through the client's transport
        poster.close()
    # ours, answered 307; then the client's transport, which follows it, for that event and the next
    assert [p for p, _, _ in rec.posts] == ["/api/v1/lineage", *["/api/v1/lineage", "/moved"] * 2]


def test_a_connection_the_server_closed_while_idle_is_reopened() -> None:
    with _recorder() as rec:
        poster = http_poster(_transport(rec.url))
        assert poster is not None
        rec.reply = "drop"
        poster(_DOC)
        assert poster._conn is not None  # nothing said it would close
        rec.reply = "sized"
        poster(_DOC)
        poster.close()
    assert len(rec.posts) == 2


def test_the_clients_transport_is_kept_where_the_request_would_differ(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    url = "http://lineage.example.invalid:5000"
    assert http_poster(_transport(url)) is not None
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    assert http_poster(_transport(url)) is None  # requests would go through the proxy
    monkeypatch.setenv("NO_PROXY", "lineage.example.invalid")
    assert http_poster(_transport(url)) is not None
    monkeypatch.delenv("HTTP_PROXY")
    (tmp_path / ".netrc").write_text("machine lineage.example.invalid login a password b\n")
    assert http_poster(_transport(url)) is None  # requests would send the .netrc credentials
    (tmp_path / ".netrc").unlink()
    assert http_poster(_transport("http://user:pw@lineage.example.invalid")) is None
    import requests
    from openlineage.client.transport.http import HttpConfig, HttpTransport

    assert http_poster(HttpTransport(HttpConfig(url=url, session=requests.Session()))) is None
    assert http_poster(object()) is None


def test_documents_sharing_dataset_entries_serialise_as_json_dumps_does() -> None:
    shared = {"namespace": "s3://b", "name": "t/é\u0000\"x", "facets": {"schema": {"fields": [{"name": "a"}]}}}
    other = {"namespace": "file", "name": "/tmp/y", "facets": {}}
    docs = [
        {**_DOC, "eventType": "COMPLETE", "inputs": [shared], "outputs": [other, shared]},
        {**_DOC, "eventType": "COMPLETE", "inputs": [shared, other], "outputs": []},
        {**_DOC, "inputs": [], "outputs": []},
    ]
    memo: dict[int, tuple[Any, str]] = {}
    for _ in range(2):
        assert [serialised(doc, memo) for doc in docs] == [json.dumps(doc, sort_keys=True) for doc in docs]
    assert id(shared) in memo


def _self_signed(tmp_path: Any) -> tuple[str, str]:
    """A certificate for 127.0.0.1 (its own CA) and its key, as PEM files."""
    pytest.importorskip("cryptography")
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def test_https_checks_the_certificate_as_the_client_does(tmp_path: Any) -> None:
    import ssl

    cert, key = _self_signed(tmp_path)
    with _recorder() as rec:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        rec.httpd.socket = context.wrap_socket(rec.httpd.socket, server_side=True)
        url = rec.url.replace("http://", "https://")
        trusted = http_poster(_transport(url, sslContext={"caCertPath": cert}))
        assert trusted is not None
        trusted(_DOC)
        trusted(_DOC)
        trusted.close()
        unchecked = http_poster(_transport(url, verify=False))
        assert unchecked is not None
        unchecked(_DOC)
        unchecked.close()
        untrusted = http_poster(_transport(url))  # certifi's bundle does not know our certificate
        assert untrusted is not None
        with pytest.raises(ssl.SSLCertVerificationError):
            untrusted(_DOC)
        untrusted.close()
    assert len(rec.posts) == 3
