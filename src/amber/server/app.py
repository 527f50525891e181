"""The HTTP API of `amber serve` (docs/SERVER.md §API), as a Starlette application.

Every request but `/healthz`, `/metrics` and `/server-key` carries
`Authorization: Bearer TOKEN`; the token names one repository and a role
(tokens.py). Errors are JSON `{"error": CODE, "message": TEXT}`, also in the
`X-Amber-Error` and `X-Amber-Message` headers (so a HEAD answer carries them too):

    400 bad-request   401 bad-token   403 forbidden   404 not-found / no-repository
    408 timeout       409 exists      411 length-required   413 too-large
    416 bad-range     422 checksum    423 locked    500/507 storage
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import re
import stat as _stat
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import anyio
import blake3
from anyio import to_thread
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..clock import Clock, SystemClock, from_iso, to_iso
from ..errors import AlreadyExists, AmberError, Locked, NotFound, StorageError, Unsupported, UsageError
from ..storage import rules
from ..storage.base import ObjectInfo, Retention
from ..version import __version__
from . import tokens as roles
from .journal import Journal
from .key import ServerKey
from .metrics import Metrics
from .state import ServerPaths, check_repo_name
from .store import Repositories, RepoStore
from .tokens import Token, TokenStore
from .witness import WitnessBook, WitnessRefused

MAX_KEY = 1024  # bytes of a key, and 255 of each segment: longer names are refused
BUFFER = 1 << 20  # upload bytes gathered before they are hashed and written off the event loop
SMALL = 1 << 20  # objects up to this size are answered in one piece, larger ones streamed
_RANGE_RE = re.compile(r"^bytes=(\d{1,19})-(\d{0,19})$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Limits:
    max_object: int = 1 << 30  # bytes of one object
    io_timeout: float = 60.0  # seconds a request body may stall
    max_retention: float = 10 * 365 * 86400  # seconds from the server's now a lock may reach


class Refused(Exception):
    """An HTTP error answer: status, code and the message the client shows."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


_AMBER_ERRORS: list[tuple[type[AmberError], int, str]] = [
    (Locked, 423, "locked"),
    (AlreadyExists, 409, "exists"),
    (NotFound, 404, "not-found"),
    (UsageError, 400, "bad-request"),
    (Unsupported, 501, "unsupported"),
]


def _refusal(e: AmberError) -> Refused:
    for cls, status, code in _AMBER_ERRORS:
        if isinstance(e, cls):
            return Refused(status, code, str(e))
    if isinstance(e, StorageError) and "no space" in str(e):
        return Refused(507, "storage", str(e))
    return Refused(500, "storage", str(e))


class Server:
    """One server root: its repositories, tokens, key, journal and metrics."""

    def __init__(
        self, root: str, limits: Limits | None = None, clock: Clock | None = None, immutable: bool | None = None
    ) -> None:
        self.paths = ServerPaths(root)
        self.paths.ensure()
        self.clock = clock or SystemClock()
        self.limits = limits or Limits()
        self.key = ServerKey.load_or_create(self.paths)
        self.journal = Journal(self.paths.journal, self.key, self.clock)
        self.tokens = TokenStore(self.paths)
        self.repos = Repositories(self.paths, self.clock, immutable)
        self.metrics = Metrics()
        self.witness = WitnessBook(self.paths, self.key, lambda: self.clock.now().timestamp())

    # -- what every request goes through ---------------------------------------------------

    def authorize(self, request: Request, repo: str, right: str) -> Token:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            raise Refused(401, "bad-token", "no token: send Authorization: Bearer TOKEN")
        token = self.tokens.authenticate(header[len("Bearer ") :].strip(), self.clock.now())
        if token is None:
            raise Refused(401, "bad-token", "the token is wrong, revoked or expired")
        if token.repo != repo:
            raise Refused(403, "forbidden", f"token {token.id} is for repository {token.repo!r}, not {repo!r}")
        if not token.may(right):
            what = "write a key file, the config, a setting or a revocation" if right == roles.CONFIGURE else right
            raise Refused(403, "forbidden", f"token {token.id} has the {token.role} role, which may not {what}")
        return token

    def store(self, repo: str) -> RepoStore:
        try:
            return self.repos.get(repo)
        except NotFound as e:
            raise Refused(404, "no-repository", str(e)) from None

    async def record(self, request: Request, token: Token, op: str, key: str = "", **details: Any) -> dict:
        client = request.client
        return await to_thread.run_sync(
            lambda: self.journal.append(
                op,
                repo=token.repo,
                key=key,
                token=token.id,
                role=token.role,
                remote=client.host if client else "",
                **details,
            )
        )

    # -- the routes ---------------------------------------------------------------------

    def app(self) -> Starlette:
        h = Handlers(self)
        routes = [
            Route("/healthz", self._wrap("healthz", h.healthz), methods=["GET"]),
            Route("/metrics", self._wrap("metrics", h.metrics), methods=["GET"]),
            Route("/server-key", self._wrap("server-key", h.server_key), methods=["GET"]),
            Route("/{repo}", self._wrap("create", h.create), methods=["POST"]),
            Route(
                "/{repo}/objects/{key:path}",
                self._by_method(
                    GET=("get", h.get), HEAD=("stat", h.stat), PUT=("put", h.put), DELETE=("delete", h.delete)
                ),
                methods=["GET", "HEAD", "PUT", "DELETE"],
            ),
            Route("/{repo}/list", self._wrap("list", h.list), methods=["GET"]),
            Route("/{repo}/retention/{key:path}", self._wrap("retention", h.retention), methods=["PUT"]),
            Route("/{repo}/hold/{key:path}", self._wrap("hold", h.hold), methods=["PUT"]),
            Route("/{repo}/journal", self._wrap("journal", h.journal), methods=["GET"]),
            Route("/{repo}/status", self._wrap("status", h.status), methods=["GET"]),
            Route("/{repo}/witness/add-checkpoint", self._wrap("cosign", h.cosign), methods=["POST"]),
            Route("/{repo}/witness/reset", self._wrap("witness-reset", h.witness_reset), methods=["POST"]),
            Route("/{repo}/witness/checkpoint", self._wrap("witness-checkpoint", h.witnessed), methods=["GET"]),
        ]
        return Starlette(routes=routes)

    def _by_method(self, **handlers: tuple[str, Callable[[Request], Awaitable[Response]]]):
        """One endpoint for one path, by method (Starlette would answer HEAD with the GET route)."""
        wrapped = {method: self._wrap(name, handler) for method, (name, handler) in handlers.items()}

        async def endpoint(request: Request) -> Response:
            return await wrapped[request.method](request)

        return endpoint

    def _wrap(self, name: str, handler: Callable[[Request], Awaitable[Response]]):
        """The handler, with every refusal turned into its JSON answer and counted."""

        async def endpoint(request: Request) -> Response:
            try:
                response = await handler(request)
            except Refused as e:
                response = self._error(e)
            except AmberError as e:
                response = self._error(_refusal(e))
            except ClientDisconnect:
                response = self._error(Refused(400, "truncated", "the client went away before the body ended"))
            except OSError as e:  # the server's own disk: said, never a traceback to the client
                status = 507 if e.errno == errno.ENOSPC else 500
                response = self._error(Refused(status, "storage", f"the server's storage failed: {e.strerror or e}"))
            self.metrics.requests.labels(request.method, name, str(response.status_code)).inc()
            return response

        return endpoint

    def _error(self, e: Refused) -> Response:
        self.metrics.refusals.labels(e.code).inc()
        printable = _CONTROL_RE.sub(" ", e.message.encode("ascii", "backslashreplace").decode())
        headers = {"X-Amber-Error": e.code, "X-Amber-Message": printable, **e.headers}
        return JSONResponse({"error": e.code, "message": e.message}, status_code=e.status, headers=headers)


def _key(request: Request) -> str:
    key = request.path_params["key"]
    if len(key.encode("utf-8", "surrogateescape")) > MAX_KEY or any(len(s) > 255 for s in key.split("/")):
        raise Refused(400, "bad-request", f"key too long: at most {MAX_KEY} bytes and 255 per segment")
    try:
        return rules.check_key(key)
    except UsageError as e:
        raise Refused(400, "bad-request", str(e)) from None


def _repo(request: Request) -> str:
    try:
        return check_repo_name(request.path_params["repo"])
    except UsageError as e:
        raise Refused(400, "bad-request", str(e)) from None


def info_json(info: ObjectInfo) -> dict[str, Any]:
    return {
        "key": info.key,
        "size": info.size,
        "retention": None
        if info.retention is None
        else {"mode": info.retention.mode, "until": to_iso(info.retention.until)},
        "legal_hold": info.legal_hold,
        "modified": to_iso(info.modified) if info.modified else None,
    }


def _info_headers(info: ObjectInfo) -> dict[str, str]:
    out = {"X-Amber-Size": str(info.size), "X-Amber-Legal-Hold": "1" if info.legal_hold else "0"}
    if info.retention is not None:
        out["X-Amber-Retention-Mode"] = info.retention.mode
        out["X-Amber-Retention-Until"] = to_iso(info.retention.until)
    if info.modified is not None:
        out["X-Amber-Modified"] = to_iso(info.modified)
    return out


def _parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end exclusive) of a `Range: bytes=A-B` or `bytes=A-` header, None without one."""
    if header is None:
        return None
    m = _RANGE_RE.match(header.strip())
    if not m or (m.group(2) and int(m.group(2)) < int(m.group(1))):
        raise Refused(416, "bad-range", f"malformed range {header[:80]!r}: only bytes=START-END or bytes=START-")
    start = int(m.group(1))
    end = min(size, int(m.group(2)) + 1) if m.group(2) else size
    if start >= size:
        raise Refused(416, "bad-range", f"range starts at {start}, past the end of a {size}-byte object")
    return start, end


async def _json_body(request: Request, limit: int = 4096) -> dict:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise Refused(413, "too-large", f"a request document is at most {limit} bytes")
    try:
        doc = json.loads(body)
    except ValueError:
        raise Refused(400, "bad-request", "the body is not a JSON document") from None
    if not isinstance(doc, dict):
        raise Refused(400, "bad-request", "the body is not a JSON object")
    return doc


async def _body(request: Request, limit: int) -> bytes:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise Refused(413, "too-large", f"this request's body is at most {limit} bytes")
    return body


WITNESS_BODY = 64 << 10


def _retention(mode: Any, until: Any) -> Retention:
    if not isinstance(mode, str) or not isinstance(until, str):
        raise Refused(400, "bad-request", "a retention needs a mode and an until date")
    try:
        return Retention(mode, from_iso(until))
    except (ValueError, UsageError) as e:
        raise Refused(400, "bad-request", f"bad retention: {e}") from None


class Handlers:
    def __init__(self, server: Server) -> None:
        self.s = server

    # -- without a token ---------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "version": __version__, "time": to_iso(self.s.clock.now())})

    async def metrics(self, request: Request) -> Response:
        return Response(generate_latest(self.s.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def server_key(self, request: Request) -> Response:
        return JSONResponse({"public_key": self.s.key.public_text()})

    # -- repositories ---------------------------------------------------------------------

    async def create(self, request: Request) -> Response:
        repo = _repo(request)
        token = self.s.authorize(request, repo, roles.CREATE)
        made = await to_thread.run_sync(self.s.repos.create, repo)
        if made:
            await self.s.record(request, token, "create-repository")
        return JSONResponse({"repo": repo, "created": made}, status_code=201 if made else 200)

    async def list(self, request: Request) -> Response:
        repo = _repo(request)
        self.s.authorize(request, repo, roles.READ)
        store = self.s.store(repo)
        prefix = request.query_params.get("prefix", "")
        try:
            rules.check_prefix(prefix)
        except UsageError as e:
            raise Refused(400, "bad-request", str(e)) from None
        return StreamingResponse(_listing(store, prefix), media_type="application/x-ndjson")

    async def status(self, request: Request) -> Response:
        """What a client may want to know about how the server protects this repository."""
        repo = _repo(request)
        self.s.authorize(request, repo, roles.READ)
        store = self.s.store(repo)
        return JSONResponse(
            {
                "repo": repo,
                "time": to_iso(self.s.clock.now()),
                "immutable": store.immutable_state(),
                "server_key": self.s.key.public_text(),
                "max_retention_days": self.s.limits.max_retention / 86400,
            }
        )

    async def journal(self, request: Request) -> Response:
        repo = _repo(request)
        self.s.authorize(request, repo, roles.READ)
        return StreamingResponse(
            _journal_lines(self.s.journal, repo),
            media_type="application/x-ndjson",
            headers={"X-Amber-Server-Key": self.s.key.public_text()},
        )

    # -- the witness (witness.py) -----------------------------------------------------------

    async def cosign(self, request: Request) -> Response:
        """Cosign a checkpoint that extends the last one cosigned for this repository."""
        repo = _repo(request)
        token = self.s.authorize(request, repo, roles.ADD)
        body = await _body(request, WITNESS_BODY)
        key = request.headers.get("x-amber-log-key")
        return await self._cosigned(request, token, "cosign", lambda: self.s.witness.add(repo, body, key))

    async def witness_reset(self, request: Request) -> Response:
        """Cosign a checkpoint whatever came before: the history after `audit trust --reset`."""
        repo = _repo(request)
        token = self.s.authorize(request, repo, roles.BYPASS)
        body = await _body(request, WITNESS_BODY)
        key = request.headers.get("x-amber-log-key")
        return await self._cosigned(request, token, "witness-reset", lambda: self.s.witness.reset(repo, body, key))

    async def _cosigned(self, request: Request, token: Token, op: str, work) -> Response:
        try:
            done = await to_thread.run_sync(work)
        except WitnessRefused as e:
            await self.s.record(request, token, "cosign-refused", reason=e.code, message=e.message)
            extra = {"X-Amber-Witness-Size": str(e.size)} if e.size is not None else None
            raise Refused(e.status, e.code, e.message, extra) from None
        size = done.note.split(b"\n")[1].decode()
        await self.s.record(request, token, op, size=int(size), old_size=done.old_size)
        return Response(done.line, media_type="text/x.tlog.cosignature")

    async def witnessed(self, request: Request) -> Response:
        """The last checkpoint cosigned for this repository, with its cosignature."""
        repo = _repo(request)
        self.s.authorize(request, repo, roles.READ)
        note = await to_thread.run_sync(self.s.witness.latest, repo)
        if note is None:
            raise Refused(404, "not-found", "this server has cosigned no checkpoint of this repository")
        return Response(note, media_type="text/plain; charset=utf-8")

    # -- objects ---------------------------------------------------------------------------

    async def stat(self, request: Request) -> Response:
        repo = _repo(request)
        self.s.authorize(request, repo, roles.READ)
        key = _key(request)
        info = await to_thread.run_sync(self.s.store(repo).stat, key)
        return Response(headers=_info_headers(info) | {"Content-Length": str(info.size)})

    async def get(self, request: Request) -> Response:
        repo = _repo(request)
        self.s.authorize(request, repo, roles.READ)
        key = _key(request)
        path = self.s.store(repo).path(key)
        fd, size = await to_thread.run_sync(_open_object, path, key)
        try:
            span = _parse_range(request.headers.get("range"), size)
        except BaseException:
            os.close(fd)
            raise
        start, end = span or (0, size)
        headers = {"Accept-Ranges": "bytes", "X-Amber-Size": str(size)}
        status = 200
        if span is not None:
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        self.s.metrics.bytes_out.inc(end - start)
        if end - start <= SMALL:
            try:
                data = await to_thread.run_sync(_pread_all, fd, start, end - start)
            finally:
                os.close(fd)
            return Response(data, status_code=status, headers=headers, media_type="application/octet-stream")
        headers["Content-Length"] = str(end - start)
        return StreamingResponse(
            _read_chunks(fd, start, end), status_code=status, headers=headers, media_type="application/octet-stream"
        )

    async def put(self, request: Request) -> Response:
        repo = _repo(request)
        key = _key(request)
        token = self.s.authorize(request, repo, roles.right_to_put(key))
        store = self.s.store(repo)
        length, digest = self._upload_headers(request)
        retention = None
        if "x-amber-retention-mode" in request.headers:
            if not token.may(roles.LOCK):
                raise Refused(403, "forbidden", f"token {token.id} may not lock objects")
            retention = _retention(
                request.headers.get("x-amber-retention-mode"), request.headers.get("x-amber-retention-until")
            )
            self._within_ceiling(retention)
        if await to_thread.run_sync(os.path.lexists, store.path(key)):
            await self._drain(request, length)
            raise Refused(409, "exists", f"{key} exists: objects are never overwritten")
        tmp = await self._receive(request, store, length, digest)
        info = await to_thread.run_sync(store.commit, key, tmp, retention)
        self._count_protection(store, retention is not None, "retention")
        self.s.metrics.bytes_in.inc(length)
        rec = await self.s.record(
            request,
            token,
            "put",
            key,
            size=length,
            blake3=digest,
            **({"retention": {"mode": retention.mode, "until": to_iso(retention.until)}} if retention else {}),
        )
        return JSONResponse({"key": key, "size": info.size, "received": rec["time"]}, status_code=201)

    def _within_ceiling(self, retention: Retention) -> None:
        """A lock reaching further than `--max-retention` is refused: a stolen token could
        otherwise pin junk on the server's disk for a century."""
        longest = self.s.limits.max_retention
        if (retention.until - self.s.clock.now()).total_seconds() > longest:
            raise Refused(
                403,
                "forbidden",
                f"a retention until {to_iso(retention.until)} reaches beyond this server's "
                f"longest of {longest / 86400:g} days (amber serve --max-retention)",
            )

    def _upload_headers(self, request: Request) -> tuple[int, str]:
        raw = request.headers.get("content-length")
        if raw is None or not raw.isdigit():
            raise Refused(411, "length-required", "an upload needs a Content-Length")
        length = int(raw)
        if length > self.s.limits.max_object:
            raise Refused(
                413,
                "too-large",
                f"{length} bytes is over this server's limit of {self.s.limits.max_object} bytes per object",
            )
        digest = request.headers.get("x-amber-blake3", "").lower()
        if not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise Refused(400, "bad-request", "an upload needs X-Amber-BLAKE3: the hex BLAKE3 hash of its body")
        return length, digest

    async def _chunks(self, request: Request):
        """The body's chunks, each awaited at most `io_timeout` seconds (a stalled client is cut off)."""
        stream = request.stream().__aiter__()
        while True:
            try:
                with anyio.fail_after(self.s.limits.io_timeout):
                    chunk = await stream.__anext__()
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise Refused(408, "timeout", f"the body stalled for {self.s.limits.io_timeout:g} s") from None
            yield chunk

    async def _drain(self, request: Request, length: int) -> None:
        got = 0
        async for chunk in self._chunks(request):
            got += len(chunk)
            if got > length:
                break

    async def _receive(self, request: Request, store: RepoStore, length: int, digest: str) -> str:
        """The whole body in a fsynced temporary file, checked against its length and BLAKE3
        hash; nothing is left behind when it is not. Each MiB is hashed and written on a worker
        thread while the next one arrives."""
        fd, tmp = await to_thread.run_sync(store.new_upload)
        h = blake3.blake3()
        got = 0
        buf = bytearray()
        loop = asyncio.get_running_loop()
        pending: asyncio.Future | None = None  # the MiB being hashed and written
        try:
            try:
                async for chunk in self._chunks(request):
                    got += len(chunk)
                    if got > length:
                        raise Refused(400, "bad-request", "the body is longer than its Content-Length")
                    buf += chunk
                    if len(buf) >= BUFFER:
                        if pending is not None:
                            await pending
                        pending = loop.run_in_executor(None, _absorb, fd, h, bytes(buf))
                        buf.clear()
                if pending is not None:
                    await pending
                    pending = None
                if buf:
                    await to_thread.run_sync(_absorb, fd, h, bytes(buf))
                if got < length:
                    raise Refused(400, "truncated", f"the body ended after {got} of {length} bytes")
                await to_thread.run_sync(os.fsync, fd)
            finally:
                if pending is not None:  # never close the file under a write still running
                    await asyncio.gather(pending, return_exceptions=True)
                os.close(fd)
            if h.hexdigest() != digest:
                raise Refused(422, "checksum", f"the body's BLAKE3 hash is {h.hexdigest()}, not {digest} as sent")
        except BaseException:
            _discard(tmp)
            raise
        return tmp

    async def delete(self, request: Request) -> Response:
        repo = _repo(request)
        token = self.s.authorize(request, repo, roles.DELETE)
        bypass = request.query_params.get("bypass-governance") == "1"
        if bypass:
            self.s.authorize(request, repo, roles.BYPASS)
        key = _key(request)
        store = self.s.store(repo)
        await to_thread.run_sync(store.delete, key, bypass)
        await self.s.record(request, token, "delete", key, **({"bypass_governance": True} if bypass else {}))
        return Response(status_code=204)

    # -- locks and holds -------------------------------------------------------------------

    async def retention(self, request: Request) -> Response:
        repo = _repo(request)
        token = self.s.authorize(request, repo, roles.LOCK)
        key = _key(request)
        doc = await _json_body(request)
        r = _retention(doc.get("mode"), doc.get("until"))
        self._within_ceiling(r)
        bypass = doc.get("bypass_governance") is True
        if bypass:
            self.s.authorize(request, repo, roles.BYPASS)
        store = self.s.store(repo)
        info = await to_thread.run_sync(store.set_retention, key, r, bypass)
        self._count_protection(store, True, "retention")
        await self.s.record(
            request,
            token,
            "retention",
            key,
            mode=r.mode,
            until=to_iso(r.until),
            **({"bypass_governance": True} if bypass else {}),
        )
        return JSONResponse(info_json(info))

    async def hold(self, request: Request) -> Response:
        repo = _repo(request)
        doc = await _json_body(request)
        on = doc.get("on")
        if not isinstance(on, bool):
            raise Refused(400, "bad-request", 'a hold request is {"on": true} or {"on": false}')
        token = self.s.authorize(request, repo, roles.HOLD if on else roles.RELEASE)
        key = _key(request)
        store = self.s.store(repo)
        info = await to_thread.run_sync(store.set_legal_hold, key, on)
        self._count_protection(store, on, "hold" if on else "release")
        await self.s.record(request, token, "hold" if on else "release", key)
        return JSONResponse(info_json(info))

    def _count_protection(self, store: RepoStore, protected: bool, kind: str) -> None:
        if not protected and kind != "release":
            return
        self.s.metrics.locks.labels(kind).inc()
        if store.immutable_works is not None:
            self.s.metrics.immutable.set(1 if store.immutable_works else 0)


# -- blocking helpers, run in worker threads -------------------------------------------------


def _absorb(fd: int, h: Any, data: bytes) -> None:
    h.update(data)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _discard(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _open_object(path: str, key: str) -> tuple[int, int]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except (FileNotFoundError, NotADirectoryError):
        raise NotFound(key) from None
    except OSError as e:
        raise StorageError(f"{key}: {e.strerror}") from None
    st = os.fstat(fd)
    if not _stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise NotFound(key)
    return fd, st.st_size


def _pread_all(fd: int, offset: int, length: int) -> bytes:
    out = bytearray()
    while len(out) < length:
        more = os.pread(fd, length - len(out), offset + len(out))
        if not more:
            break
        out += more
    return bytes(out)


def _read_chunks(fd: int, start: int, end: int) -> Iterator[bytes]:
    """The object's bytes in 1 MiB pieces; the file is closed when the answer ends or breaks off."""
    try:
        pos = start
        while pos < end:
            data = os.pread(fd, min(SMALL, end - pos), pos)
            if not data:
                break
            pos += len(data)
            yield data
    finally:
        os.close(fd)


def _listing(store: RepoStore, prefix: str) -> Iterator[bytes]:
    """NDJSON, one object a line, then `{"end": true, "count": N}` so a cut listing is noticed."""
    lines: list[bytes] = []
    count = 0
    for info in store.list(prefix):
        count += 1
        modified = to_iso(info.modified) if info.modified else None
        lines.append(json.dumps({"key": info.key, "size": info.size, "modified": modified}).encode() + b"\n")
        if len(lines) >= 512:
            yield b"".join(lines)
            lines.clear()
    lines.append(json.dumps({"end": True, "count": count}).encode() + b"\n")
    yield b"".join(lines)


def _journal_lines(journal: Journal, repo: str) -> Iterator[bytes]:
    for _n, raw in journal.records():
        try:
            if json.loads(raw).get("repo") == repo:
                yield raw if raw.endswith(b"\n") else raw + b"\n"
        except (ValueError, AttributeError):
            continue
