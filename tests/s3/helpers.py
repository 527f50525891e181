"""Helpers for the end-to-end tests of `amber` on `s3:` repositories.

Every test drives `amber` (in-process, or the real executable where a test is
marked `subprocess` or starts processes itself) against a real S3 API server
on 127.0.0.1 (tests/s3server.py), over HTTP. The assertions
about Object Lock read the objects back with a plain boto3 client, the way an
operator would, never through amber.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

_CLI_TESTS = str(Path(__file__).resolve().parent.parent / "cli")
if _CLI_TESTS not in sys.path:
    sys.path.insert(0, _CLI_TESTS)

from cli_helpers import Amber, with_one_backup  # noqa: E402
from s3server import CREDENTIALS  # noqa: E402

UTC = dt.UTC


class S3Amber(Amber):
    """One user of amber whose repository is `s3:BUCKET/PREFIX` on a test server."""

    def __init__(self, base: Path, server, bucket: str, prefix: str = "repo", **kw) -> None:
        super().__init__(base, **kw)
        self.server = server
        self.bucket = bucket
        self.prefix = prefix
        self.url = f"s3:{bucket}/{prefix}"

    def env(self, **overrides) -> dict:
        s3 = {k: None for k in os.environ if k.startswith("AWS_")}  # nothing from the caller's AWS setup
        s3.update(CREDENTIALS)
        s3.update(
            {
                "AMBER_REPOSITORY": self.url,
                "AMBER_S3_ENDPOINT": self.server.endpoint,
                "AWS_CONFIG_FILE": str(self.home / "aws-config"),
                "AWS_SHARED_CREDENTIALS_FILE": str(self.home / "aws-credentials"),
            }
        )
        s3.update(overrides)
        return super().env(**s3)

    # -- the bucket as an operator sees it -----------------------------------------

    @property
    def s3(self):
        if not hasattr(self, "_client"):
            self._client = self.server.client()
        return self._client

    def key(self, key: str) -> str:
        return f"{self.prefix}/{key}"

    def keys(self, sub: str = "") -> list[str]:
        """Repository keys (without the prefix) of every object under `sub`."""
        out = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.key(sub)):
            out += [o["Key"][len(self.prefix) + 1 :] for o in page.get("Contents", [])]
        return sorted(out)

    def head(self, key: str) -> dict:
        return self.s3.head_object(Bucket=self.bucket, Key=self.key(key))

    def overwrite(self, key: str, data: bytes) -> None:
        """Write over `key` as an attacker does on this server: a new version where the server
        reads the newest (AWS, moto); where first-writer-wins applies (RGW ignores If-None-Match)
        a new version would never be read, so every version that storage lets go is deleted first."""
        if getattr(self.server, "kind", "moto") == "rgw":
            self.erase(key)
        self.s3.put_object(Bucket=self.bucket, Key=self.key(key), Body=data)

    def erase(self, key: str) -> None:
        """Delete `key` as an attacker with delete rights does: on moto a delete marker (what a
        plain delete does); on RGW every version the bucket lets go (a locked one stays)."""
        if getattr(self.server, "kind", "moto") != "rgw":
            self.s3.delete_object(Bucket=self.bucket, Key=self.key(key))
            return
        resp = self.s3.list_object_versions(Bucket=self.bucket, Prefix=self.key(key))
        for v in resp.get("Versions", []) + resp.get("DeleteMarkers", []):
            if v["Key"] != self.key(key):
                continue
            try:
                self.s3.delete_object(
                    Bucket=self.bucket, Key=v["Key"], VersionId=v["VersionId"], BypassGovernanceRetention=True
                )
            except Exception:  # locked: the bucket refuses, as it should
                pass

    def versions(self, key: str) -> list[str]:
        resp = self.s3.list_object_versions(Bucket=self.bucket, Prefix=self.key(key))
        return [v["VersionId"] for v in resp.get("Versions", []) if v["Key"] == self.key(key)]


def iso(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def retention_of(head: dict):
    """(mode, until) of an object as the server reports it, or (None, None)."""
    until = head.get("ObjectLockRetainUntilDate")
    if until is not None and until.tzinfo is None:
        until = until.replace(tzinfo=UTC)
    return head.get("ObjectLockMode"), until


class LossyProxy:
    """A TCP proxy in front of the S3 server that loses the response to chosen requests.

    The first request whose request line contains `path_part` (for `method`) reaches the server
    and is carried out there, but its response never reaches the client: the proxy closes the
    client's connection instead, as a dropped link or a reset load balancer would. The client
    cannot tell whether the request took effect; a retry must cope with either outcome.
    """

    def __init__(
        self, target_port: int, method: bytes = b"PUT", path_part: bytes = b"/snapshots/", times: int = 1
    ) -> None:
        import socket
        import threading

        self.target_port = target_port
        self.method = method
        self.path_part = path_part
        self.left = times
        self.lost: list[bytes] = []
        self._mu = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._closed = False
        self._open: list = []  # every socket of every connection carried
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._closed = True
        try:
            self.sock.close()
        except OSError:
            pass

    def cut(self) -> None:
        """The server goes away for the client: no new connection, every open one reset."""
        self._closed = True
        _shut(self.sock)  # shutdown wakes the accept() under way; a close alone would not
        with self._mu:
            for sock in self._open:
                _shut(sock)

    def _accept(self) -> None:
        import socket
        import threading

        while not self._closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            if self._closed:
                _shut(client)
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._mu:
                self._open += [client, server]
            state = {"doomed": False}
            threading.Thread(target=self._up, args=(client, server, state), daemon=True).start()
            threading.Thread(target=self._down, args=(server, client, state), daemon=True).start()

    def _up(self, client, server, state) -> None:
        try:
            while True:
                data = client.recv(1 << 16)
                if not data:
                    break
                line = data.split(b"\r\n", 1)[0]
                if line.startswith(self.method + b" ") and self.path_part in line:
                    with self._mu:
                        if self.left > 0:
                            self.left -= 1
                            state["doomed"] = True
                            self.lost.append(line)
                server.sendall(data)
        except OSError:
            pass
        finally:
            _shut(server)

    def _down(self, server, client, state) -> None:
        try:
            while True:
                data = server.recv(1 << 16)
                if not data:
                    break
                if state["doomed"] and b"HTTP/1.1 1" not in data[:12]:
                    break  # the server has answered: the client never hears it
                client.sendall(data)
        except OSError:
            pass
        finally:
            _shut(client)
            _shut(server)


def _shut(sock) -> None:
    import socket

    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def write_behind(user, key: str, data: bytes) -> None:
    """Write `data` at `key` behind amber's back, as an attacker with write rights does: a file
    replaced in a local repository, an overwrite on S3 (`S3Amber.overwrite`)."""
    if isinstance(user, S3Amber):
        user.overwrite(key, data)
        return
    path = user.repo / key
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        os.chmod(path, 0o644)
        path.unlink()
    path.write_bytes(data)


def attacked_user(request, tmp_path):
    """The user of the attack suites: a repository with one snapshot (`sid` of `src`), on
    local storage or on S3 in an Object Lock bucket (`request.param`: "local" or a server kind)."""
    if request.param == "local":
        u = Amber(tmp_path / "amber")
    else:
        server = request.getfixturevalue(f"{request.param}_server")
        u = S3Amber(tmp_path / "amber", server, server.new_bucket(object_lock=True))
    return with_one_backup(u, tmp_path / "src")
