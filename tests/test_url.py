"""URL import: SSRF refusals, pinned connections, manual redirects, size limits, clean failure.

Every test talks only to a server it starts on 127.0.0.1. An autouse spy wraps ``socket.create_connection``
so any attempt to dial a non-loopback address fails the test, and the recorded dials prove that a refused
destination was never contacted.
"""

from __future__ import annotations

import hashlib
import ipaddress
import shutil
import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from apate_core.errors import Cancelled, MediaTooLarge, UrlRefused
from apate_core.media import url as url_module
from apate_core.media.url import MAX_REDIRECTS, DownloadedFile, check_url, download_url
from apate_core.progress import CancelToken

HOST = "media.example"
LOOPBACK = frozenset({"127.0.0.1"})
BODY = bytes(range(256)) * 1000  # 256 000 bytes
BIG_STREAM = 2 * 1024 * 1024


# ----------------------------------------------------------------------------------------- spies


class DialSpy:
    """Records every outgoing TCP dial; refuses (and flags) anything that is not loopback."""

    def __init__(self, real):
        self.real = real
        self.dials: list[tuple[str, int]] = []
        self.forbidden: list[tuple[str, int]] = []

    def __call__(self, address, *args, **kwargs):
        host, port = address[0], address[1]
        self.dials.append((host, port))
        if not ipaddress.ip_address(host).is_loopback:
            self.forbidden.append((host, port))
            raise AssertionError(f"test tried to dial non-loopback {host}:{port}")
        return self.real(address, *args, **kwargs)


@pytest.fixture(autouse=True)
def dial_spy(monkeypatch):
    spy = DialSpy(socket.create_connection)
    monkeypatch.setattr(socket, "create_connection", spy)
    yield spy
    assert not spy.forbidden, f"non-loopback dials attempted: {spy.forbidden}"


class MapResolver:
    """Maps test host names to addresses and records every lookup; unknown names fail the test."""

    def __init__(self, table: dict[str, list[str]]):
        self.table = table
        self.calls: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        if host not in self.table:
            raise AssertionError(f"unexpected DNS lookup of {host}")
        return list(self.table[host])


@pytest.fixture
def resolver() -> MapResolver:
    return MapResolver({HOST: ["127.0.0.1"], "internal.example": ["10.1.2.3"]})


def no_dns(host: str, port: int) -> list[str]:
    raise AssertionError(f"no DNS lookup expected, got {host}")


# ----------------------------------------------------------------------------------------- test server


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    release = threading.Event()  # lets a stalled response finish at teardown
    seen: list[tuple[str, str]] = []  # (path, Host header)

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        Handler.seen.append((self.path, self.headers.get("Host", "")))
        route = ROUTES.get(self.path.split("?")[0])
        if route is None:
            self._send(404, b"not found")
        else:
            route(self)

    def _send(self, status: int, body: bytes, content_type: str = "application/octet-stream") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str, status: int = 302) -> None:
        self.send_response(status)
        self.send_header("Location", location.replace("{port}", str(self.server.server_port)))
        self.send_header("Content-Length", "0")
        self.end_headers()


def _declared_big(h: Handler) -> None:
    h.send_response(200)
    h.send_header("Content-Length", str(10_000_000))
    h.end_headers()
    h.wfile.flush()
    h.release.wait(10)  # the body would only come after the client gave up
    h.wfile.write(b"x" * 1000)


def _chunked_big(h: Handler) -> None:
    h.send_response(200)
    h.send_header("Transfer-Encoding", "chunked")
    h.end_headers()
    chunk = b"y" * 65536
    for _ in range(BIG_STREAM // len(chunk)):
        h.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    h.wfile.write(b"0\r\n\r\n")


def _unsized(h: Handler) -> None:
    # no Content-Length, not chunked: the body ends when the connection closes
    h.send_response(200)
    h.send_header("Content-Type", "video/mp4")
    h.send_header("Connection", "close")
    h.end_headers()
    h.wfile.write(BODY)
    h.close_connection = True


def _slow(h: Handler) -> None:
    h.release.wait(3)
    h._send(200, b"late")


ROUTES = {
    "/media/clip.mp4": lambda h: h._send(200, BODY, "video/mp4; charset=binary"),
    "/media/unsized.mp4": _unsized,
    "/media/..%2F..%2Fetc%2Fpasswd": lambda h: h._send(200, BODY),
    "/declared-big": _declared_big,
    "/chunked-big": _chunked_big,
    "/empty": lambda h: h._send(200, b""),
    "/boom": lambda h: h._send(500, b"oops"),
    "/slow": _slow,
    "/r1": lambda h: h._redirect("/r2"),
    "/r2": lambda h: h._redirect("http://media.example:{port}/media/clip.mp4", 301),
    "/to-metadata": lambda h: h._redirect("http://169.254.169.254/latest/meta-data"),
    "/to-private": lambda h: h._redirect("http://10.0.0.5/"),
    "/to-v6-loopback": lambda h: h._redirect("http://[::1]/"),
    "/to-ftp": lambda h: h._redirect("ftp://media.example/clip.mp4"),
    "/to-internal-name": lambda h: h._redirect("http://internal.example/clip.mp4"),
    "/to-creds": lambda h: h._redirect("http://user:pw@media.example:{port}/media/clip.mp4"),
    "/loop": lambda h: h._redirect("/loop"),
}


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass  # clients that hang up early (size limits) are expected here


@pytest.fixture
def server():
    Handler.release.clear()
    Handler.seen.clear()
    httpd = QuietServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{httpd.server_port}"
    finally:
        Handler.release.set()
        httpd.shutdown()
        httpd.server_close()


def fetch(url: str, dest: Path, resolver, **kwargs) -> DownloadedFile:
    kwargs.setdefault("max_bytes", 1_000_000)
    kwargs.setdefault("timeout", 5.0)
    return download_url(url, dest, resolver=resolver, allow_addresses=LOOPBACK, **kwargs)


def leftovers(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.iterdir()) if dest.exists() else []


# ----------------------------------------------------------------------------------------- downloads


def test_download_hashes_and_pins_the_checked_address(server, resolver, dial_spy, tmp_path):
    progress: list[float] = []
    result = fetch(server + "/media/clip.mp4", tmp_path, resolver, progress=lambda f, m: progress.append(f))
    assert result.sha256 == hashlib.sha256(BODY).hexdigest()
    assert result.size == len(BODY) and result.path.read_bytes() == BODY
    assert result.path.parent == tmp_path and result.path.name == "clip.mp4"
    assert result.content_type == "video/mp4"
    assert result.url == result.final_url == server + "/media/clip.mp4"
    assert progress and progress[-1] == 1.0 and progress == sorted(progress)
    # resolved once, dialled the checked IP, and the server still saw the original host name
    assert resolver.calls == [(HOST, int(server.rsplit(":", 1)[1]))]
    assert [ip for ip, _ in dial_spy.dials] == ["127.0.0.1"]
    assert Handler.seen[-1][1] == server.split("//")[1]
    assert leftovers(tmp_path) == ["clip.mp4"]


def test_body_without_length_and_name_collisions(server, resolver, tmp_path):
    first = fetch(server + "/media/unsized.mp4", tmp_path, resolver)
    second = fetch(server + "/media/unsized.mp4", tmp_path, resolver)
    assert first.sha256 == second.sha256 == hashlib.sha256(BODY).hexdigest()
    assert (first.path.name, second.path.name) == ("unsized.mp4", "unsized-1.mp4")
    assert first.path.read_bytes() == BODY


def test_file_name_from_url_cannot_escape_dest_dir(server, resolver, tmp_path):
    dest = tmp_path / "downloads"
    result = fetch(server + "/media/..%2F..%2Fetc%2Fpasswd", dest, resolver)
    assert result.path.parent == dest and result.path.name == "passwd"
    assert url_module._safe_filename("http://x/.hidden%00name%20.mp4?q=1", "") == "hidden_name_.mp4"
    assert url_module._safe_filename("http://x/", "http://x/") == "download"


def test_content_length_over_limit_is_refused_before_reading(server, resolver, tmp_path, monkeypatch):
    reads = []
    real_read = url_module.http.client.HTTPResponse.read
    monkeypatch.setattr(url_module.http.client.HTTPResponse, "read",
                        lambda self, *a: reads.append(a) or real_read(self, *a))
    started = time.monotonic()
    with pytest.raises(MediaTooLarge) as info:
        fetch(server + "/declared-big", tmp_path, resolver, max_bytes=100_000)
    assert time.monotonic() - started < 3  # did not wait for the stalled body
    assert reads == []
    assert "10000000 bytes" in str(info.value) and "Limit:" in str(info.value)
    assert leftovers(tmp_path) == []


def test_streamed_body_over_limit_stops_and_leaves_nothing(server, resolver, tmp_path):
    with pytest.raises(MediaTooLarge) as info:
        fetch(server + "/chunked-big", tmp_path, resolver, max_bytes=300_000)
    assert "300000 bytes" in str(info.value)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("path, expected", [("/missing", "HTTP 404"), ("/boom", "HTTP 500"), ("/empty", "empty")])
def test_bad_responses_are_refused(server, resolver, tmp_path, path, expected):
    with pytest.raises(UrlRefused) as info:
        fetch(server + path, tmp_path, resolver)
    assert expected in str(info.value) and "Accepted:" in str(info.value)
    assert leftovers(tmp_path) == []


def test_timeout_is_a_readable_refusal(server, resolver, tmp_path):
    with pytest.raises(UrlRefused) as info:
        fetch(server + "/slow", tmp_path, resolver, timeout=0.3)
    assert "did not answer in time" in str(info.value) and "0.3 s" in str(info.value)


def test_connection_refused_is_a_readable_refusal(resolver, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(UrlRefused) as info:
        fetch(f"http://{HOST}:{port}/x.mp4", tmp_path, resolver)
    assert "Could not connect" in str(info.value)


def test_cancellation_before_and_during_download(server, resolver, tmp_path):
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        fetch(server + "/media/clip.mp4", tmp_path, resolver, cancel=token)
    token = CancelToken()
    with pytest.raises(Cancelled):
        fetch(server + "/media/clip.mp4", tmp_path, resolver, cancel=token, progress=lambda f, m: token.cancel())
    assert leftovers(tmp_path) == []


# ----------------------------------------------------------------------------------------- redirects


def test_redirect_chain_to_an_allowed_path(server, resolver, tmp_path):
    result = fetch(server + "/r1", tmp_path, resolver)
    assert result.url == server + "/r1"
    assert result.final_url == server + "/media/clip.mp4"
    assert result.sha256 == hashlib.sha256(BODY).hexdigest() and result.path.name == "clip.mp4"
    assert [path for path, _ in Handler.seen] == ["/r1", "/r2", "/media/clip.mp4"]


@pytest.mark.parametrize("path, expected", [
    ("/to-metadata", "169.254.169.254"),
    ("/to-private", "10.0.0.5"),
    ("/to-v6-loopback", "loopback"),
    ("/to-internal-name", "resolves to 10.1.2.3"),
    ("/to-ftp", "'ftp:'"),
    ("/to-creds", "user name or password"),
])
def test_redirect_to_refused_destination_sends_nothing_there(server, resolver, dial_spy, tmp_path, path, expected):
    with pytest.raises(UrlRefused) as info:
        fetch(server + path, tmp_path, resolver)
    assert expected in str(info.value) and "Accepted:" in str(info.value)
    # only the first hop was dialled, and only the test server saw a request
    assert [ip for ip, _ in dial_spy.dials] == ["127.0.0.1"]
    assert [p for p, _ in Handler.seen] == [path]
    assert leftovers(tmp_path) == []


def test_too_many_redirects(server, resolver, tmp_path):
    with pytest.raises(UrlRefused) as info:
        fetch(server + "/loop", tmp_path, resolver)
    assert f"more than {MAX_REDIRECTS}" in str(info.value) and "Limit:" in str(info.value)
    assert len(Handler.seen) == MAX_REDIRECTS + 1


# ----------------------------------------------------------------------------------------- direct refusals


@pytest.mark.parametrize("url, expected", [
    ("http://127.0.0.1/", "loopback"),
    ("http://[::ffff:127.0.0.1]/", "IPv6 form of 127.0.0.1"),
    ("http://[::1]/", "loopback"),
    ("http://2130706433/", "means 127.0.0.1"),
    ("http://0177.0.0.1/", "means 127.0.0.1"),
    ("http://0x7f.0.0.1/", "means 127.0.0.1"),
    ("http://0x7f.1/", "means 127.0.0.1"),
    ("http://127.0.0.1./", "means 127.0.0.1"),
    ("http://\uff11\uff12\uff17.0.0.1/", "loopback"),  # full-width digits, mapped by IDNA
    ("http://0/", "0.0.0.0"),
    ("http://0.0.0.0/", "unspecified"),
    ("http://[::]/", "unspecified"),
    ("http://224.0.0.1/", "multicast"),
    ("http://100.64.0.1/", "carrier-grade NAT"),
    ("http://169.254.169.254/latest/meta-data", "link-local"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[fd00::1]/", "unique local"),
    ("http://192.168.1.1/", "private"),
    ("http://240.0.0.1/", "reserved"),
    ("http://[2002:7f00:1::]/", "IPv6 form of 127.0.0.1"),
    ("file:///etc/passwd", "'file:'"),
    ("javascript:alert(1)", "'javascript:'"),
    ("data:text/plain,hi", "'data:'"),
    ("gopher://example.com/", "'gopher:'"),
    ("ftp://example.com/a.mp4", "'ftp:'"),
    ("example.com/a.mp4", "no scheme"),
    ("http://user:pw@example.com/", "user name or password"),
    ("http://example.com@evil.example/", "user name or password"),
    ("http://exa\nmple.com/", "control characters"),
    ("http:///nohost", "no host"),
])
def test_direct_refusals_need_no_server(url, expected, dial_spy, tmp_path):
    with pytest.raises(UrlRefused) as info:
        download_url(url, tmp_path, max_bytes=1000, resolver=no_dns)
    message = str(info.value)
    assert expected in message
    assert "Accepted: http:// or https://" in message
    with pytest.raises(UrlRefused) as checked:  # the API's quick pre-check refuses it the same way
        check_url(url, resolver=no_dns)
    assert str(checked.value) == message
    assert dial_spy.dials == []


def test_check_url_returns_the_public_addresses_it_checked():
    resolver = MapResolver({HOST: ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]})
    assert check_url(f"https://{HOST}/a.mp4", resolver=resolver) == ["93.184.215.14",
                                                                    "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]


def test_localhost_is_refused_through_the_real_resolver(dial_spy, tmp_path):
    with pytest.raises(UrlRefused) as info:
        download_url("http://localhost/", tmp_path, max_bytes=1000)
    assert "resolves to" in str(info.value) and "loopback" in str(info.value)
    assert dial_spy.dials == []


def test_any_bad_address_refuses_the_host(dial_spy, tmp_path):
    mixed = MapResolver({HOST: ["127.0.0.1", "10.0.0.1"]})
    with pytest.raises(UrlRefused) as info:
        fetch(f"http://{HOST}/a.mp4", tmp_path, mixed)
    assert "10.0.0.1" in str(info.value)
    assert dial_spy.dials == []


def test_allow_addresses_is_exact(dial_spy, tmp_path):
    other_loopback = MapResolver({HOST: ["127.0.0.2"]})
    with pytest.raises(UrlRefused):
        fetch(f"http://{HOST}/a.mp4", tmp_path, other_loopback)
    assert dial_spy.dials == []


# ----------------------------------------------------------------------------------------- https


@pytest.fixture
def tls_server(tmp_path):
    """An HTTPS server with a self-signed certificate for media.example; yields (base URL, cert, SNI names seen)."""
    if not shutil.which("openssl"):
        pytest.skip("openssl command not installed; cannot make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={HOST}",
                    "-addext", f"subjectAltName=DNS:{HOST}", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    sni_seen: list[str] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: sni_seen.append(name)
    httpd = QuietServer(("127.0.0.1", 0), Handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"https://{HOST}:{httpd.server_port}", cert, sni_seen
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_https_refuses_an_untrusted_certificate(tls_server, resolver, dial_spy, tmp_path):
    base, _, _ = tls_server
    dest = tmp_path / "downloads"
    with pytest.raises(UrlRefused) as info:
        fetch(base + "/media/clip.mp4", dest, resolver)
    assert "certificate" in str(info.value) and HOST in str(info.value)
    assert [ip for ip, _ in dial_spy.dials] == ["127.0.0.1"]
    assert leftovers(dest) == []


def test_https_dials_the_pinned_ip_with_sni_and_verifies_the_name(tls_server, resolver, dial_spy, tmp_path,
                                                                 monkeypatch):
    base, cert, sni_seen = tls_server
    real = ssl.create_default_context
    # trust the test certificate only; verification itself (chain + host name) stays on
    monkeypatch.setattr(ssl, "create_default_context", lambda *a, **k: real(cafile=str(cert)))
    result = fetch(base + "/media/clip.mp4", tmp_path / "downloads", resolver)
    assert result.sha256 == hashlib.sha256(BODY).hexdigest()
    assert sni_seen == [HOST]
    assert [ip for ip, _ in dial_spy.dials] == ["127.0.0.1"]
    # the same certificate does not name other.example, so the name check refuses it
    other = MapResolver({"other.example": ["127.0.0.1"]})
    with pytest.raises(UrlRefused) as info:
        fetch(base.replace(HOST, "other.example") + "/media/clip.mp4", tmp_path / "downloads", other)
    assert "certificate" in str(info.value)
