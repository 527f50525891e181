"""A repository on an `amber serve` server: `rest:https://HOST:PORT/NAME`.

The server owns the storage, the clock and the lock state; this client asks and
reports what the server answered (docs/SERVER.md). HTTP/1.1 with keep-alive over
one connection pool per client (urllib3: it reads large bodies through the
standard library's buffered socket reader, 1.6 times httpx's rate over TLS
here), TLS verified against the system's certificate authorities or a private
one (`--cacert` / AMBER_CACERT). The token comes from AMBER_TOKEN or the file
named by AMBER_TOKEN_FILE and is sent as `Authorization: Bearer`.

Guarantees, mapped onto the server's API:
- `put` sends the body with its Content-Length and BLAKE3 hash; the server stores it
  only when both match, and never over an existing key (409 → `AlreadyExists`).
  When a connection breaks after the body was sent, the put is tried again, and
  a 409 then counts as success only if the stored bytes are these bytes.
- Retention and holds are judged by the server's clock, never this machine's.
- Connection failures are retried with backoff for about half a minute once
  the server has answered (so a server restart does not fail a backup), for
  about two seconds before that; answers are never retried.

Answers map onto amber's errors: 401 → `TokenRefused` (exit 12), 403 →
`NotAllowed` (exit 13), 423 → `Locked` (exit 30), 404 → `NotFound` (or
`RepositoryNotFound` for a repository the server does not have).
"""

from __future__ import annotations

import json
import os
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import blake3

from ..clock import from_iso, to_iso
from ..errors import (
    AlreadyExists,
    AmberError,
    Locked,
    NotAllowed,
    NotFound,
    RepositoryNotFound,
    StorageError,
    TokenRefused,
    Unsupported,
    UsageError,
)
from . import rules
from .base import Capabilities, ObjectInfo, Retention, Storage

# seconds between attempts when the server cannot be reached: a server that answered before is
# given half a minute to come back (a restart); one never reached is reported soon
RETRY_DELAYS = (0.2, 0.5, 1, 2, 3, 5, 5, 5, 5, 5)
FIRST_DELAYS = (0.2, 0.5, 1)
MAX_TOKEN_FILE = 4096


class RestStorage(Storage):
    capabilities = Capabilities(object_lock=True, legal_hold=True, conditional_put=True)

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        cacert: str | None = None,
        create: bool = False,
        clock=None,
        timeout: float = 120.0,
    ) -> None:
        self.url = url
        self.base, self.name = _split(url)
        self.token = token if token is not None else _token_from_env()
        if self.token and not (self.token.isascii() and self.token.isprintable() and " " not in self.token):
            raise UsageError("the token (AMBER_TOKEN or AMBER_TOKEN_FILE) is not a token: printable ASCII only")
        self.cacert = cacert or os.environ.get("AMBER_CACERT") or None
        self.timeout = timeout
        if clock is not None:
            self.clock = clock
        self._http = None
        self._reached = False  # whether the server has answered this client yet
        if create:
            self._call("POST", f"/{self.name}", what=self.name)

    def describe(self) -> str:
        return f"rest:{self.url}"

    # -- HTTP ---------------------------------------------------------------------------

    @property
    def http(self):
        """The connection pool to the server (made on first use: a process that never asks
        does not load the HTTP client)."""
        if self._http is None:
            import ssl

            import urllib3

            if self.cacert and not os.path.isfile(self.cacert):
                raise UsageError(f"--cacert / AMBER_CACERT {self.cacert}: no such file")
            extra = {}
            if self.base.startswith("https:"):
                # the system's certificate authorities, or only the one given
                extra["ssl_context"] = ssl.create_default_context(cafile=self.cacert or None)
            self._http = urllib3.connection_from_url(
                self.base,
                maxsize=16,
                block=False,
                retries=False,
                timeout=urllib3.Timeout(connect=10.0, read=self.timeout),
                **extra,
            )
        return self._http

    def _call(self, method: str, path: str, *, what: str, ok=(200, 201, 204, 206), **kw) -> _Answer:
        """One request, tried again while the server cannot be reached; the answer, or the
        amber error for its refusal."""
        from urllib3.exceptions import ConnectTimeoutError, HTTPError, NewConnectionError, SSLError

        url, body, headers = _encode(path, kw)
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        resent = False  # whether a request may have reached the server before this one
        for delay in (*(RETRY_DELAYS if self._reached else FIRST_DELAYS), None):
            try:
                resp = self.http.urlopen(method, url, body=body, headers=headers, redirect=False, retries=False)
            except SSLError as e:
                if _untrusted(e):
                    raise StorageError(
                        f"{self.base}: the server's TLS certificate is not trusted ({e}); give its certificate "
                        "authority with --cacert FILE or AMBER_CACERT"
                    ) from None
                # a handshake cut short (a server restarting): as unreachable, tried again
                if delay is None:
                    raise StorageError(f"{what}: TLS with the amber server at {self.base} failed ({e})") from None
                time.sleep(delay)
                continue
            except (NewConnectionError, ConnectTimeoutError) as e:
                if delay is None:
                    raise StorageError(f"{what}: cannot reach the amber server at {self.base} ({e})") from None
                time.sleep(delay)
                continue
            except HTTPError as e:
                if delay is None or method == "POST":
                    raise StorageError(
                        f"{what}: the connection to {self.base} failed ({type(e).__name__}: {e})"
                    ) from None
                time.sleep(delay)
                resent = True
                continue
            self._reached = True
            answer = _Answer(resp.status, resp.headers, resp.data)
            if answer.status_code in ok:
                return answer
            err = self._refusal(answer, what)
            err.resent = resent  # type: ignore[attr-defined]
            raise err
        raise AssertionError("unreachable")

    def call(self, method: str, path: str, *, what: str, ok=(200,), **kw) -> _Answer:
        """One request to this server outside the object API (the witness endpoints): the
        answer when its status is in `ok`, else the amber error for the refusal."""
        return self._call(method, path, what=what, ok=ok, **kw)

    def _refusal(self, resp, what: str) -> AmberError:
        code = resp.headers.get("x-amber-error", "")
        message = resp.headers.get("x-amber-message") or f"HTTP {resp.status_code}"
        status = resp.status_code
        if status == 401:
            return TokenRefused(
                f"{self.base}: the server refused the token ({message}); set AMBER_TOKEN or AMBER_TOKEN_FILE"
            )
        if status == 403:
            return NotAllowed(f"{what}: not allowed by the server: {message}")
        if status == 404 and code == "no-repository":
            return RepositoryNotFound(f"rest:{self.url}: {message}")
        if status == 404:
            return NotFound(what)
        if status == 409:
            return AlreadyExists(what)
        if status == 423:
            return Locked(message)
        if status == 400 and code == "bad-request":
            return UsageError(f"{what}: {message}")
        if status == 501:
            return Unsupported(message)
        return StorageError(f"{what}: the amber server answered {status} ({code or 'error'}): {message}")

    def _path(self, area: str, key: str) -> str:
        return f"/{self.name}/{area}/{rules.check_key(key)}"

    # -- objects ---------------------------------------------------------------------------

    def put(self, key, data, *, retention=None):
        path = self._path("objects", key)
        body = bytes(data)
        headers = {"X-Amber-BLAKE3": blake3.blake3(body).hexdigest()}
        if retention is not None:
            headers["X-Amber-Retention-Mode"] = retention.mode
            headers["X-Amber-Retention-Until"] = to_iso(retention.until)
        try:
            self._call("PUT", path, what=key, content=body, headers=headers)
        except AlreadyExists as e:
            if getattr(e, "resent", False) and self._landed(key, body):
                return
            raise

    def _landed(self, key: str, body: bytes) -> bool:
        """Whether `key` holds exactly `body`: the put was tried again after its answer was
        lost, and its first attempt landed (sealed objects never repeat by chance)."""
        try:
            return self.stat(key).size == len(body) and self.get(key) == body
        except AmberError:
            return False

    def get(self, key, offset=0, length=None):
        path = self._path("objects", key)
        if length == 0:
            self.stat(key)
            return b""
        headers = {}
        if length is not None:
            headers["Range"] = f"bytes={offset}-{offset + length - 1}"
        elif offset:
            headers["Range"] = f"bytes={offset}-"
        resp = self._call("GET", path, what=key, headers=headers, ok=(200, 206, 416))
        return b"" if resp.status_code == 416 else resp.content  # 416: from at or past the end

    def stat(self, key):
        resp = self._call("HEAD", self._path("objects", key), what=key)
        h = resp.headers
        retention = None
        if "x-amber-retention-mode" in h:
            retention = Retention(h["x-amber-retention-mode"], from_iso(h["x-amber-retention-until"]))
        modified = from_iso(h["x-amber-modified"]) if "x-amber-modified" in h else None
        return ObjectInfo(key, int(h.get("x-amber-size", "0")), retention, h.get("x-amber-legal-hold") == "1", modified)

    def list(self, prefix=""):
        rules.check_prefix(prefix)
        resp = self._call("GET", f"/{self.name}/list", what=prefix or "/", params={"prefix": prefix})
        return iter(_listing(resp.text, prefix))

    def delete(self, key, *, bypass_governance=False):
        params = {"bypass-governance": "1"} if bypass_governance else {}
        try:
            self._call("DELETE", self._path("objects", key), what=key, params=params)
        except NotFound as e:
            if not getattr(e, "resent", False):
                raise  # else: the first attempt deleted it, and its answer was lost

    def set_retention(self, key, retention, *, bypass_governance=False):
        doc = {"mode": retention.mode, "until": to_iso(retention.until), "bypass_governance": bypass_governance}
        self._call("PUT", self._path("retention", key), what=key, json=doc)

    def set_legal_hold(self, key, on):
        self._call("PUT", self._path("hold", key), what=key, json={"on": bool(on)})

    # -- what the server keeps beside the objects --------------------------------------------

    def journal(self) -> list[dict]:
        """The server journal's records of this repository (an auditor token is enough)."""
        resp = self._call("GET", f"/{self.name}/journal", what="the server journal")
        return [json.loads(line) for line in resp.text.splitlines() if line.strip()]

    def server_key(self) -> str:
        """The server's public key, `ed25519:BASE64`."""
        return str(self._call("GET", "/server-key", what="the server key").json()["public_key"])

    def lock_posture(self, seconds: float, mode: str | None) -> list[str]:
        """Warnings where the server protects locked objects less than it could: the immutable
        attribute is off (no CAP_LINUX_IMMUTABLE) or the file system refused it. Its API refuses
        every change to a locked object either way; the attribute also stops root on the server."""
        try:
            state = self._call("GET", f"/{self.name}/status", what="the server's status").json().get("immutable")
        except (AmberError, ValueError):
            return []  # an older server, or none reachable: the posture is advice, not a check
        if state == "off":
            return [
                f"{self.describe()}: the server does not set the immutable attribute on locked objects (it lacks "
                "CAP_LINUX_IMMUTABLE): only its API protects them, not the file system (docs/SERVER.md §4)"
            ]
        if state == "unsupported":
            return [
                f"{self.describe()}: the server's file system refuses the immutable attribute: only the server's "
                "API protects locked objects (docs/SERVER.md §4)"
            ]
        return []

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None


@dataclass(frozen=True, slots=True)
class _Answer:
    status_code: int
    headers: Mapping[str, str]  # urllib3's, case-insensitive
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8")

    def json(self):
        return json.loads(self.content)


def _encode(path: str, kw: dict) -> tuple[str, bytes | None, dict[str, str]]:
    """(path with its query, body, headers) of a request given as `params`, `content`, `json`
    and `headers`."""
    headers = dict(kw.get("headers") or {})
    body = kw.get("content")
    if "json" in kw:
        body = json.dumps(kw["json"]).encode()
        headers["Content-Type"] = "application/json"
    params = kw.get("params")
    return (f"{path}?{urllib.parse.urlencode(params)}" if params else path), body, headers


def _listing(text: str, prefix: str) -> Iterator[ObjectInfo]:
    out = []
    ended = False
    for line in text.splitlines():
        doc = json.loads(line)
        if doc.get("end"):
            ended = True
            break
        modified = from_iso(doc["modified"]) if doc.get("modified") else None
        out.append(ObjectInfo(doc["key"], int(doc["size"]), modified=modified))
    if not ended:
        raise StorageError(f"listing of {prefix or '/'} broke off before its end")
    return iter(out)


def _split(url: str) -> tuple[str, str]:
    """(https://host:port, NAME) of `https://host:port/NAME`."""
    parts = urllib.parse.urlsplit(url)
    name = parts.path.strip("/")
    if parts.scheme not in ("https", "http") or not parts.netloc or not name or "/" in name:
        raise UsageError(f"rest:{url}: give rest:https://HOST:PORT/NAME")
    if parts.query or parts.fragment:
        raise UsageError(f"rest:{url}: no query or fragment, just rest:https://HOST:PORT/NAME")
    return f"{parts.scheme}://{parts.netloc}", name


def _token_from_env() -> str | None:
    token = os.environ.get("AMBER_TOKEN")
    if token:
        return token.strip()
    path = os.environ.get("AMBER_TOKEN_FILE")
    if not path:
        return None
    try:
        with open(os.path.expanduser(path), "rb") as f:
            raw = f.read(MAX_TOKEN_FILE + 1)
    except OSError as e:
        raise AmberError(f"cannot read AMBER_TOKEN_FILE {path}: {e.strerror}") from None
    if len(raw) > MAX_TOKEN_FILE:
        raise UsageError(f"AMBER_TOKEN_FILE {path} is longer than {MAX_TOKEN_FILE} bytes: not a token file")
    return raw.decode("utf-8", "replace").strip()


def _untrusted(e: BaseException) -> bool:
    """Whether a TLS failure is the server's certificate not verifying (not a cut connection)."""
    import ssl

    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(cur):
            return True
        cur = cur.__cause__ or cur.__context__ or next((a for a in cur.args if isinstance(a, BaseException)), None)
    return False
