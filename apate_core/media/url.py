"""Import media from an http(s) URL without letting the URL reach anything but the public internet.

Defences against server-side request forgery (SSRF), in order:

* only ``http``/``https``, no credentials, no control characters, no odd numeric IPv4 spellings;
* the host is resolved ONCE per hop and every address it resolves to must be public;
* the connection dials the checked IP itself (the Host header and TLS SNI keep the name), so a DNS answer
  that changes between check and connect (DNS rebinding) cannot redirect it;
* redirects are followed by hand, at most ``MAX_REDIRECTS``, and each destination is checked the same way
  before any byte is sent to it;
* the body is streamed to a temporary file under ``max_bytes`` (checked from Content-Length first), hashed as
  it arrives, and deleted on any failure or cancellation.

http.client is used directly (not urllib) so proxy environment variables and automatic redirects never apply.
"""

from __future__ import annotations

import hashlib
import http.client
import ipaddress
import os
import re
import socket
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional, Union
from urllib.parse import quote, unquote, urljoin, urlsplit

from ..errors import MediaTooLarge, UrlRefused
from ..progress import CancelToken, ProgressCallback, check_cancelled

MAX_REDIRECTS = 5
MAX_URL_CHARS = 4096
CHUNK_BYTES = 64 * 1024
USER_AGENT = "Apate/0.1 (media forensics; URL import)"

ACCEPTED_URLS = "http:// or https:// URLs of media on the public internet, without a user name or password"
ACCEPTED_RESPONSE = "a URL that answers 200 OK with the media file itself"

Resolver = Callable[[str, int], list[str]]
IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]

_REDIRECT_CODES = {301, 302, 303, 307, 308}
_HOSTNAME_RE = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*\.?$")
_NUMERIC_LABEL_RE = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")

# Special-purpose ranges refused by name. ipaddress.is_global is the backstop, but Python 3.11 calls some of
# these global (192.0.0.0/24, fec0::/10, ::a.b.c.d), so the explicit list comes first and gives the message.
_SPECIAL_NETWORKS: list[tuple[str, str]] = [
    ("0.0.0.0/8", "an unspecified/'this network' address (0.0.0.0/8)"),
    ("127.0.0.0/8", "a loopback address (this machine)"),
    ("10.0.0.0/8", "a private network address (RFC 1918)"),
    ("172.16.0.0/12", "a private network address (RFC 1918)"),
    ("192.168.0.0/16", "a private network address (RFC 1918)"),
    ("100.64.0.0/10", "a carrier-grade NAT address (100.64.0.0/10)"),
    ("169.254.0.0/16", "a link-local address (169.254.0.0/16, where cloud metadata services such as "
                       "169.254.169.254 live)"),
    ("192.0.0.0/24", "an IETF protocol-assignment address (192.0.0.0/24)"),
    ("192.0.2.0/24", "a documentation address"),
    ("198.51.100.0/24", "a documentation address"),
    ("203.0.113.0/24", "a documentation address"),
    ("198.18.0.0/15", "a benchmarking address (198.18.0.0/15)"),
    ("192.88.99.0/24", "a deprecated 6to4 relay address"),
    ("224.0.0.0/4", "a multicast address"),
    ("240.0.0.0/4", "a reserved address (240.0.0.0/4)"),
    ("::/128", "the unspecified address (::)"),
    ("::1/128", "a loopback address (this machine)"),
    ("::/96", "a deprecated IPv4-compatible IPv6 address"),
    ("fc00::/7", "a private (unique local) IPv6 address (fc00::/7)"),
    ("fe80::/10", "a link-local IPv6 address (fe80::/10)"),
    ("fec0::/10", "a deprecated site-local IPv6 address (fec0::/10)"),
    ("ff00::/8", "a multicast address"),
    ("64:ff9b:1::/48", "a local-use NAT64 address"),
    ("100::/64", "a discard-only IPv6 address"),
    ("2001:db8::/32", "a documentation address"),
]
_SPECIAL = [(ipaddress.ip_network(net), label) for net, label in _SPECIAL_NETWORKS]
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


@dataclass(frozen=True)
class DownloadedFile:
    """A finished download: where it lies, where it came from, and what it was."""

    path: Path
    url: str
    final_url: str
    content_type: str
    size: int
    sha256: str


@dataclass(frozen=True)
class _Target:
    """A validated URL, split into what a request needs."""

    url: str
    scheme: str
    host: str  # lower-case name or bare IP literal (no brackets), used for Host and SNI
    port: int
    request_path: str
    literal_ip: Optional[IPAddress]


@dataclass(frozen=True)
class _Job:
    """What one download_url call asked for, passed down to the streaming helpers."""

    url: str
    dest: Path
    max_bytes: int
    timeout: float
    progress: Optional[ProgressCallback]
    cancel: Optional[CancelToken]


# --------------------------------------------------------------------------------------------- URL checks


def _refuse(problem: str, limit: str = "") -> UrlRefused:
    return UrlRefused(problem, ACCEPTED_URLS, limit)


def _parse_target(url: str) -> _Target:
    """Validate scheme, credentials and host syntax; no network traffic."""
    if not isinstance(url, str) or not url.strip():
        raise _refuse("The URL is empty")
    url = url.strip()
    if len(url) > MAX_URL_CHARS:
        raise _refuse(f"The URL is {len(url)} characters long", f"{MAX_URL_CHARS} characters")
    if any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in url):
        # urlsplit silently drops tabs/newlines, which would hide header-injection attempts
        raise _refuse("The URL contains spaces or control characters")
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. an unclosed IPv6 bracket
        raise _refuse(f"The URL cannot be parsed ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        shown = f"scheme is '{scheme}:'" if scheme else "has no scheme"
        raise _refuse(f"The URL {shown}; only http:// and https:// can be imported")
    if "@" in parts.netloc:
        raise _refuse("The URL contains a user name or password (user:pass@host)")
    if "\\" in parts.netloc:
        raise _refuse("The URL's host part contains a backslash")
    host, literal = _parse_host(parts)
    port = _parse_port(parts, scheme)
    return _Target(url, scheme, host, port, _request_path(parts.path, parts.query), literal)


def _parse_port(parts, scheme: str) -> int:
    try:
        port = parts.port
    except ValueError:
        raise _refuse("The URL's port is not a number between 1 and 65535") from None
    if port == 0:
        raise _refuse("The URL's port is 0")
    return port or (443 if scheme == "https" else 80)


def _parse_host(parts) -> tuple[str, Optional[IPAddress]]:
    host = parts.hostname or ""
    if not host:
        raise _refuse("The URL has no host name")
    if "%" in host:
        raise _refuse(f"The host '{host}' carries an IPv6 zone or percent-encoding")
    if ":" in host:  # only a bracketed IPv6 literal keeps a colon in .hostname
        try:
            return host, ipaddress.IPv6Address(host)
        except ValueError:
            raise _refuse(f"The host '[{host}]' is not a valid IPv6 address") from None
    try:
        # IDNA first: it maps look-alikes such as full-width digits to ASCII, which must then be checked as IPs
        ascii_host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise _refuse(f"The host '{host}' is not a valid domain name") from None
    try:
        return ascii_host, ipaddress.IPv4Address(ascii_host)
    except ValueError:
        pass
    _refuse_odd_ipv4(ascii_host)
    if not _HOSTNAME_RE.match(ascii_host):
        raise _refuse(f"The host '{host}' is not a valid domain name")
    return ascii_host.rstrip("."), None


def _refuse_odd_ipv4(host: str) -> None:
    """Refuse decimal/octal/hex/short IPv4 spellings (2130706433, 0177.0.0.1, 0x7f.1, 0): resolvers read them
    as addresses even though they do not look like one, a classic way past naive filters."""
    labels = host.rstrip(".").split(".")
    if not _NUMERIC_LABEL_RE.match(labels[-1]):
        return
    meaning = _inet_aton_meaning(labels)
    if meaning is None:
        raise _refuse(f"The host '{host}' looks like an IP address but is not a valid one")
    reason = _address_refusal(meaning)
    described = f"it means {meaning}" + (f", {reason}" if reason else "")
    raise _refuse(
        f"The host '{host}' is an IPv4 address in a non-standard notation ({described}); "
        "write addresses as four decimal numbers such as 93.184.216.34"
    )


def _inet_aton_meaning(labels: list[str]) -> Optional[ipaddress.IPv4Address]:
    """What inet_aton would read from numeric labels (a, a.b, a.b.c, a.b.c.d in decimal, octal or hex)."""
    if not 1 <= len(labels) <= 4 or not all(_NUMERIC_LABEL_RE.match(label) for label in labels):
        return None
    try:
        values = [int(label, 0) if not re.match(r"^0[0-7]+$", label) else int(label, 8) for label in labels]
    except ValueError:
        return None
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (5 - len(values)):
        return None
    number = 0
    for v in head:
        number = number * 256 + v
    return ipaddress.IPv4Address(number * 256 ** (5 - len(values)) + last)


def _request_path(path: str, query: str) -> str:
    # Percent-encode anything outside RFC 3986 so http.client can send it; existing %XX escapes are kept.
    safe = "/%:@!$&'()*+,;=-._~"
    encoded = quote(path or "/", safe=safe)
    if query:
        encoded += "?" + quote(query, safe=safe + "?")
    return encoded


# ----------------------------------------------------------------------------------------- address checks


def _address_refusal(ip: IPAddress) -> Optional[str]:
    """Why this address may not be fetched from, or None when it is a public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            inner = _address_refusal(embedded)
            return f"an IPv6 form of {embedded}, {inner}" if inner else None
    for network, label in _SPECIAL:
        if ip.version == network.version and ip in network:
            return label
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_loopback:
        return "a loopback address (this machine)"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_private:
        return "a private network address"
    if ip.is_reserved:
        return "a reserved address"
    if not ip.is_global:
        return "a special-purpose address that is not on the public internet"
    return None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> Optional[ipaddress.IPv4Address]:
    """The IPv4 address an IPv6 address stands for (mapped ::ffff:a.b.c.d, NAT64, 6to4, Teredo client)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    return None


def _normalise_allow(addresses: Iterable[str] | str) -> frozenset[str]:
    allowed = set()
    for text in [addresses] if isinstance(addresses, str) else addresses:
        allowed.add(str(ipaddress.ip_address(text.strip("[]"))))
    return frozenset(allowed)


def _check_addresses(target: _Target, addresses: list[str], allowed: frozenset[str]) -> list[str]:
    """Every address the host resolved to must be public (or explicitly allowed); any bad one refuses all."""
    if not addresses:
        raise _refuse(f"The host '{target.host}' did not resolve to any address")
    checked = []
    for text in addresses:
        try:
            ip = ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError:
            raise _refuse(f"The host '{target.host}' resolved to '{text}', which is not an IP address") from None
        reason = None if str(ip) in allowed else _address_refusal(ip)
        if reason:
            via = "" if target.literal_ip is not None else f" resolves to {ip}, which"
            where = f"The host '{target.host}'{via}"
            raise _refuse(f"{where} is {reason}; URL import only fetches from public addresses")
        checked.append(str(ip))
    return list(dict.fromkeys(checked))


def _system_resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [info[4][0] for info in infos]


def _resolve(target: _Target, resolver: Optional[Resolver], allowed: frozenset[str]) -> list[str]:
    if target.literal_ip is not None:
        return _check_addresses(target, [str(target.literal_ip)], allowed)
    try:
        addresses = (resolver or _system_resolve)(target.host, target.port)
    except (OSError, UnicodeError) as exc:
        raise _refuse(f"The host '{target.host}' could not be resolved ({exc})") from None
    return _check_addresses(target, list(addresses), allowed)


# ----------------------------------------------------------------------------------------- connections


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP to a pre-checked IP; ``host`` still names the site in the Host header."""

    def __init__(self, host: str, port: int, pinned_ip: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self.pinned_ip = pinned_ip

    def connect(self) -> None:
        self.sock = socket.create_connection((self.pinned_ip, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a pre-checked IP, with SNI and certificate verification against the host name."""

    def __init__(self, host: str, port: int, pinned_ip: str, timeout: float):
        context = ssl.create_default_context()
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        super().__init__(host, port, timeout=timeout, context=context)
        self.pinned_ip = pinned_ip
        self.tls_context = context

    def connect(self) -> None:
        raw = socket.create_connection((self.pinned_ip, self.port), self.timeout)
        try:
            self.sock = self.tls_context.wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()
            raise


def _open(target: _Target, ip: str, timeout: float) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    cls = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    conn = cls(target.host, target.port, ip, timeout)
    headers = {"User-Agent": USER_AGENT, "Accept": "*/*", "Accept-Encoding": "identity", "Connection": "close"}
    try:
        conn.request("GET", target.request_path, headers=headers)
        return conn, conn.getresponse()
    except BaseException:
        conn.close()
        raise


def _network_error(exc: BaseException, target: _Target, timeout: float) -> UrlRefused:
    where = f"{target.host}:{target.port}"
    limit = f"{timeout:g} s network timeout"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return UrlRefused(f"The server {where} did not answer in time", ACCEPTED_RESPONSE, limit)
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = exc.verify_message or str(exc)
        problem = f"The HTTPS certificate of {target.host} could not be verified ({reason})"
        return UrlRefused(problem, ACCEPTED_RESPONSE)
    if isinstance(exc, ssl.SSLError):
        return UrlRefused(f"The HTTPS connection to {where} failed ({exc.reason or exc})", ACCEPTED_RESPONSE)
    if isinstance(exc, http.client.IncompleteRead):
        return UrlRefused(f"The server {where} closed the connection before the whole file arrived",
                          ACCEPTED_RESPONSE)
    if isinstance(exc, http.client.HTTPException):
        return UrlRefused(f"The server {where} sent an invalid HTTP response ({type(exc).__name__})",
                          ACCEPTED_RESPONSE)
    detail = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return UrlRefused(f"Could not connect to {where} ({detail})", ACCEPTED_RESPONSE, limit)


def _connect_any(target: _Target, addresses: list[str], timeout: float):
    """Try each checked address in turn; all of them already passed the public-address check."""
    last: Optional[BaseException] = None
    for ip in addresses:
        try:
            return _open(target, ip, timeout)
        except (OSError, http.client.HTTPException) as exc:
            last = exc
            if isinstance(exc, (ssl.SSLError, http.client.HTTPException)):
                break  # the server answered badly; another address of it will not help
    raise _network_error(last, target, timeout) from None


# ----------------------------------------------------------------------------------------- download


def download_url(
    url: str,
    dest_dir: Union[str, Path],
    *,
    max_bytes: int,
    timeout: float = 20.0,
    progress: Optional[ProgressCallback] = None,
    cancel: Optional[CancelToken] = None,
    resolver: Optional[Resolver] = None,
    allow_addresses: Iterable[str] = frozenset(),
) -> DownloadedFile:
    """Fetch ``url`` into ``dest_dir`` safely (see the module docstring).

    ``resolver(host, port) -> [ip, ...]`` replaces DNS (tests). ``allow_addresses`` lists exact IPs that may be
    used although they are not public: a test-only escape hatch, never fed from user input.
    Raises UrlRefused, MediaTooLarge or Cancelled; never leaves a partial file behind.
    """
    if max_bytes <= 0:
        raise ValueError("max_bytes must be positive")
    allowed = _normalise_allow(allow_addresses)
    job = _Job(url, Path(dest_dir), max_bytes, timeout, progress, cancel)
    target = _parse_target(url)
    job.dest.mkdir(parents=True, exist_ok=True)
    for _hop in range(MAX_REDIRECTS + 1):
        check_cancelled(cancel)
        addresses = _resolve(target, resolver, allowed)  # checked BEFORE any byte goes to this hop
        conn, response = _connect_any(target, addresses, timeout)
        try:
            location = _redirect_location(response, target)
            if location is None:
                return _receive(response, target, job)
        finally:
            conn.close()
        target = _parse_target(urljoin(target.url, location))
    raise UrlRefused(
        f"The URL redirected more than {MAX_REDIRECTS} times", ACCEPTED_RESPONSE, f"{MAX_REDIRECTS} redirects"
    )


def check_url(url: str, *, resolver: Optional[Resolver] = None, allow_addresses: Iterable[str] = frozenset()) -> list[str]:
    """The public addresses ``url`` resolves to, or UrlRefused for what ``download_url`` would refuse before
    dialing (scheme, credentials, port, a non-public address). For a quick answer only: the download checks
    every hop again, pinned to the address it dials."""
    return _resolve(_parse_target(url), resolver, _normalise_allow(allow_addresses))


def _redirect_location(response: http.client.HTTPResponse, target: _Target) -> Optional[str]:
    """The Location to follow, None for a 2xx answer; anything else is refused with its status."""
    status = response.status
    if 200 <= status < 300:
        return None
    if status in _REDIRECT_CODES:
        location = response.getheader("Location")
        if not location:
            raise UrlRefused(f"The server answered HTTP {status} without a Location to follow", ACCEPTED_RESPONSE)
        return location.strip()
    reason = (response.reason or "").strip()[:80]
    shown = f"{status} {reason}" if reason else str(status)
    raise UrlRefused(f"The server answered HTTP {shown} for {target.url}", ACCEPTED_RESPONSE)


def _declared_length(response: http.client.HTTPResponse) -> Optional[int]:
    raw = response.getheader("Content-Length")
    if raw is None or not raw.strip().isdigit():
        return None
    return int(raw.strip())


def _too_large(size_text: str, max_bytes: int) -> MediaTooLarge:
    limit = f"{_mb(max_bytes)} ({max_bytes} bytes)"
    return MediaTooLarge(f"The download is {size_text}", "media files up to the configured size", limit)


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


def _receive(response: http.client.HTTPResponse, target: _Target, job: _Job) -> DownloadedFile:
    declared = _declared_length(response)
    if declared is not None and declared > job.max_bytes:
        raise _too_large(f"{_mb(declared)} ({declared} bytes, from its Content-Length)", job.max_bytes)
    content_type = (response.getheader("Content-Type") or "").split(";")[0].strip().lower()[:100]
    fd, temp_name = tempfile.mkstemp(prefix=".apate-download-", suffix=".part", dir=job.dest)
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            size, digest = _stream_body(response, out, target, declared, job)
        if size == 0:
            raise UrlRefused(f"The server {target.host} sent an empty body", ACCEPTED_RESPONSE)
        final = _place(temp, job.dest, _safe_filename(target.url, job.url), digest)
    except BaseException:
        temp.unlink(missing_ok=True)  # never leave a partial or refused download behind
        raise
    if job.progress is not None:
        job.progress(1.0, f"Downloaded {_mb(size)}")
    return DownloadedFile(final, job.url, target.url, content_type, size, digest)


def _stream_body(response: http.client.HTTPResponse, out, target: _Target, declared: Optional[int],
                 job: _Job) -> tuple[int, str]:
    hasher = hashlib.sha256()
    size = 0
    while True:
        check_cancelled(job.cancel)
        try:
            # ask for one byte more than the limit allows so an oversized body is noticed without reading on
            chunk = response.read(min(CHUNK_BYTES, job.max_bytes - size + 1))
        except (OSError, http.client.HTTPException) as exc:
            raise _network_error(exc, target, job.timeout) from None
        if not chunk:
            break
        size += len(chunk)
        if size > job.max_bytes:
            raise _too_large(f"larger than the limit (more than {job.max_bytes} bytes arrived)", job.max_bytes)
        hasher.update(chunk)
        out.write(chunk)
        _report(job.progress, size, declared)
    if declared is not None and size < declared:
        raise UrlRefused(f"The server {target.host} closed the connection after {size} of {declared} bytes",
                         ACCEPTED_RESPONSE)
    return size, hasher.hexdigest()


def _report(progress: Optional[ProgressCallback], size: int, declared: Optional[int]) -> None:
    if progress is None:
        return
    fraction = min(1.0, size / declared) if declared else 0.0
    progress(fraction, f"Downloaded {_mb(size)}" + (f" of {_mb(declared)}" if declared else ""))


# ----------------------------------------------------------------------------------------- file naming


def _safe_filename(final_url: str, original_url: str) -> str:
    """A harmless local name from the URL path's last segment; the content is sniffed later, not trusted."""
    for candidate in (final_url, original_url):
        path = unquote(urlsplit(candidate).path)
        base = re.split(r"[/\\]", path)[-1]
        name = re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip(".-_")
        if name:
            stem, dot, ext = name.rpartition(".")
            if dot and 0 < len(ext) <= 10:
                return stem[:100] + "." + ext
            return name[:100]
    return "download"


def _place(temp: Path, dest: Path, name: str, digest: str) -> Path:
    """Move the finished temp file to ``dest/name`` without ever overwriting an existing file."""
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    for n in range(100):
        candidate = dest / (name if n == 0 else f"{stem}-{n}{dot}{ext}")
        try:
            os.link(temp, candidate)  # atomic, fails if the name is taken
        except FileExistsError:
            continue
        except OSError:
            break  # filesystem without hard links: fall back to a content-addressed name
        temp.unlink()
        return candidate
    fallback = dest / f"{digest[:16]}-{name}"
    os.replace(temp, fallback)
    return fallback


__all__ = ["DownloadedFile", "Resolver", "check_url", "download_url", "MAX_REDIRECTS"]
