"""Hostile and broken requests: bad names, oversized, truncated and stalled bodies, wrong
checksums, malformed ranges, a flood of bad tokens. Each gets a clear HTTP error (and the client
a clear amber error); the server keeps running, writes nothing outside its root and loses nothing."""

from __future__ import annotations

import datetime as dt
import os
import socket
import ssl
import time

import blake3
import httpx
import pytest
from serverproc import ServeProcess, release_immutable

from amber.errors import AlreadyExists, StorageError, TokenRefused, UsageError
from amber.storage.rest import RestStorage


@pytest.fixture
def limited(tmp_path, certs):
    """A server with a 1 MiB object limit and a 1 s stall timeout."""
    server = ServeProcess(tmp_path / "root", certs, extra=["--max-object-size", "1M", "--io-timeout", "1"]).start()
    yield server
    server.stop()
    release_immutable(server.root)


@pytest.fixture
def admin(limited):
    token = limited.token("office", "admin")["token"]
    storage = RestStorage(f"{limited.base}/office", token=token, cacert=str(limited.certs["ca"]), create=True)
    storage.put("config", b"precious")
    yield storage
    storage.close()


def _tls(server) -> ssl.SSLSocket:
    ctx = ssl.create_default_context(cafile=str(server.certs["ca"]))
    return ctx.wrap_socket(
        socket.create_connection(("127.0.0.1", server.port), timeout=30), server_hostname="127.0.0.1"
    )


def _raw(server, head: bytes, body: bytes = b"", *, close_after: bool = False) -> tuple[int, bytes]:
    """Send HEAD (request line and headers, without the blank line) and BODY as they are; the
    status and the answer, or (0, b"") when the server closed without one."""
    with _tls(server) as s:
        s.sendall(head + b"\r\n\r\n" + body)
        if close_after:
            s.shutdown(socket.SHUT_WR)
        data = b""
        try:
            while chunk := s.recv(65536):
                data += chunk
                if b"\r\n\r\n" in data and b"connection: close" not in data.lower():
                    break
        except (ConnectionError, ssl.SSLError):
            pass
    if not data.startswith(b"HTTP/1.1 "):
        return 0, data
    return int(data[9:12]), data


def _request(server, token: str, method: str, path: bytes, extra: bytes = b"", body: bytes = b"", **kw):
    head = (
        method.encode()
        + b" "
        + path
        + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
        + token.encode()
        + extra
    )
    return _raw(server, head, body, **kw)


def _outside_untouched(server) -> list[str]:
    """Files under the server root's parent that are not the server's own or the test's."""
    parent = server.root.parent
    return sorted(n for n in os.listdir(parent) if n not in ("root",) and not n.startswith(("serve-", "faketime-")))


def _incoming_empty(server, repo="office", wait=15.0) -> bool:
    folder = server.root / repo / ".incoming"
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if not os.listdir(folder):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize(
    "path",
    [
        b"/office/objects/../../etc/passwd",
        b"/office/objects/%2e%2e/%2e%2e/etc/passwd",
        b"/office/objects/data/../../../x",
        b"/office/objects//etc/passwd",
        b"/office/objects/a%00b",
        b"/office/objects/.locks/config",
        b"/office/objects/" + b"a" * 300,
        b"/office/objects/" + b"/".join([b"abcdefgh"] * 200),
        b"/office/objects/caf%C3%A9",
        b"/..%2f/objects/config",
    ],
)
def test_bad_names_are_refused(limited, admin, path):
    token = admin.token
    body = b"planted"
    sha = blake3.blake3(body).hexdigest().encode()
    status, answer = _request(limited, token, "PUT", path, b"\r\nContent-Length: 7\r\nX-Amber-BLAKE3: " + sha, body)
    assert status in (400, 404), answer
    status, answer = _request(limited, token, "GET", path)
    assert status in (400, 404), answer
    assert _outside_untouched(limited) == []
    assert not os.path.exists("/etc/passwd.planted")
    assert admin.get("config") == b"precious"


def test_the_client_refuses_bad_names_before_sending(admin):
    for key in ("../x", "/abs", "a\x00b", ".locks/x"):
        with pytest.raises(UsageError):
            admin.put(key, b"x")


def test_a_body_over_the_limit_is_refused(limited, admin):
    status, answer = _request(
        limited,
        admin.token,
        "PUT",
        b"/office/objects/big",
        b"\r\nContent-Length: 2097152\r\nX-Amber-BLAKE3: " + b"0" * 64,
    )
    assert status == 413 and b"limit of 1048576 bytes" in answer
    with pytest.raises(StorageError) as e:
        admin.put("big", os.urandom(2 << 20))
    assert "over this server's limit of 1048576 bytes" in str(e.value)
    assert not admin.exists("big")


def test_an_upload_without_length_or_checksum_is_refused(limited, admin):
    status, answer = _request(
        limited, admin.token, "PUT", b"/office/objects/k", b"\r\nTransfer-Encoding: chunked", b"3\r\nabc\r\n0\r\n\r\n"
    )
    assert status == 411, answer
    status, answer = _request(limited, admin.token, "PUT", b"/office/objects/k", b"\r\nContent-Length: 3", b"abc")
    assert status == 400 and b"X-Amber-BLAKE3" in answer


def test_a_wrong_checksum_stores_nothing(limited, admin):
    body = os.urandom(50_000)
    sha = blake3.blake3(b"something else").hexdigest().encode()
    status, answer = _request(
        limited,
        admin.token,
        "PUT",
        b"/office/objects/data/00/x",
        b"\r\nContent-Length: 50000\r\nX-Amber-BLAKE3: " + sha,
        body,
    )
    assert status == 422 and b"checksum" in answer
    assert not admin.exists("data/00/x")
    assert _incoming_empty(limited)


def test_a_truncated_upload_leaves_no_object(limited, admin):
    body = os.urandom(10_000)
    sha = blake3.blake3(body + b"rest").hexdigest().encode()
    head = b"\r\nContent-Length: 200000\r\nX-Amber-BLAKE3: " + sha
    _request(limited, admin.token, "PUT", b"/office/objects/data/00/cut", head, body, close_after=True)
    assert _incoming_empty(limited)
    assert not admin.exists("data/00/cut")
    assert admin.get("config") == b"precious"
    admin.put("data/00/cut", b"whole")  # the key is still free
    assert admin.get("data/00/cut") == b"whole"


def test_a_stalled_upload_is_cut_off(limited, admin):
    sha = blake3.blake3(b"x" * 1000).hexdigest().encode()
    with _tls(limited) as s:
        s.sendall(
            b"PUT /office/objects/slow HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            + admin.token.encode()
            + b"\r\nContent-Length: 1000\r\nX-Amber-BLAKE3: "
            + sha
            + b"\r\n\r\n"
            + b"x" * 100
        )
        answer = s.recv(65536)  # the server answers after its 1 s timeout, without the rest
    assert answer.startswith(b"HTTP/1.1 408") and b"stalled" in answer
    assert _incoming_empty(limited)
    assert not admin.exists("slow")


@pytest.mark.parametrize(
    "header", [b"bytes=5-2", b"bytes=abc", b"bytes=-5", b"items=0-1", b"bytes=0-1,3-4", b"bytes=100-"]
)
def test_malformed_ranges(limited, admin, header):
    status, answer = _request(limited, admin.token, "GET", b"/office/objects/config", b"\r\nRange: " + header)
    assert status == 416 and b"range" in answer.lower()
    assert admin.get("config", 2, 3) == b"eci"


def test_a_flood_of_bad_tokens(limited, admin):
    trust = ssl.create_default_context(cafile=str(limited.certs["ca"]))
    with httpx.Client(base_url=limited.base, verify=trust) as h:
        for i in range(300):
            bad = admin.token[:-6] + f"{i:06d}" if i % 3 else f"amber_{i:012x}_guess"
            r = h.get("/office/objects/config", headers={"Authorization": f"Bearer {bad}"})
            assert (r.status_code, r.headers["x-amber-error"]) == (401, "bad-token")
        assert h.get("/healthz").status_code == 200
        metrics = h.get("/metrics").text
    assert 'amber_refusals_total{reason="bad-token"} 300.0' in metrics
    assert limited.alive()
    assert admin.get("config") == b"precious"
    with pytest.raises(TokenRefused):
        RestStorage(f"{limited.base}/office", token="amber_x_y", cacert=str(limited.certs["ca"])).get("config")


def test_overwrite_is_refused_and_the_object_kept(admin):
    with pytest.raises(AlreadyExists):
        admin.put("config", b"replaced")
    assert admin.get("config") == b"precious"


def test_stalled_request_headers_are_cut_off(limited, admin):
    with _tls(limited) as s:
        s.sendall(b"GET /office/objects/config HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthor")
        assert s.recv(65536) == b""  # closed after the 1 s timeout, no request was ever made
    with _tls(limited) as s:
        assert s.recv(65536) == b""  # a connection that never sends a request is closed the same way
    assert admin.get("config") == b"precious"  # and the server serves the next client


def test_a_lock_beyond_the_servers_ceiling_is_refused(limited, admin):
    from amber.errors import NotAllowed
    from amber.storage.base import Retention

    far = Retention("compliance", admin.clock.now() + dt.timedelta(days=365 * 11))
    with pytest.raises(NotAllowed) as e:
        admin.put("data/00/pinned", b"junk", retention=far)
    assert "longest of 3653 days" in str(e.value)
    assert not admin.exists("data/00/pinned")
    with pytest.raises(NotAllowed):
        admin.set_retention("config", far)
    assert admin.stat("config").retention is None
