"""A real `amber serve` process on 127.0.0.1 with real TLS, for the server's tests.

The certificates are made here with `cryptography`: a private CA and a server
certificate for 127.0.0.1 and localhost signed by it. Tokens are made with the
real `amber serve token add`. With `faketime`, the server's clock can be moved
(`ServeProcess.move_clock`) through libfaketime's timestamp file, the way an
operator's NTP would never move it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fakeclock import LIBFAKETIME

AMBER = str(Path(sys.executable).parent / "amber")


def make_certificates(folder: Path) -> dict[str, Path]:
    """A CA and a server certificate for 127.0.0.1/localhost: paths of ca, cert and key (PEM)."""
    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "amber test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=400))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=400))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = {"ca": folder / "ca.pem", "cert": folder / "server.pem", "key": folder / "server-key.pem"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


def release_immutable(root) -> None:
    """Clear the immutable attribute the server set (as root), so the test's folder can go."""
    from amber.server.immutable import set_immutable

    for folder, _dirs, files in os.walk(root):
        for name in files:
            try:
                set_immutable(os.path.join(folder, name), False)
            except OSError:
                pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith(("AMBER_", "FAKETIME", "LD_PRELOAD"))}


class ServeProcess:
    """`amber serve --root ROOT` on 127.0.0.1 with TLS; `stop`, `kill`, `start` again."""

    def __init__(
        self, root: Path, certs: dict[str, Path], *, fake_clock: bool = False, extra=(), tls: bool = True, prefix=()
    ) -> None:
        self.root = Path(root)
        self.certs = certs
        self.port = free_port()
        self.tls = tls
        self.prefix = list(prefix)  # a command the server is started through (setpriv ...)
        self.base = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.extra = list(extra)
        self.fake_clock = fake_clock and LIBFAKETIME is not None
        self.clock_file = self.root.parent / f"faketime-{self.port}"
        self.offset = 0.0
        self.proc: subprocess.Popen | None = None
        self.log = self.root.parent / f"serve-{self.port}.log"

    def url(self, name: str) -> str:
        return f"rest:{self.base}/{name}"

    def env(self) -> dict:
        env = clean_env()
        if self.fake_clock:
            self.clock_file.write_text(f"{self.offset:+.3f}\n")
            env.update(
                {
                    "LD_PRELOAD": LIBFAKETIME,
                    "FAKETIME_TIMESTAMP_FILE": str(self.clock_file),
                    "FAKETIME_NO_CACHE": "1",
                    "FAKETIME_DONT_FAKE_MONOTONIC": "1",
                }
            )
        return env

    def start(self) -> ServeProcess:
        tls = ["--tls-cert", str(self.certs["cert"]), "--tls-key", str(self.certs["key"])] if self.tls else []
        cmd = [
            *self.prefix,
            AMBER,
            "serve",
            "--root",
            str(self.root),
            "--listen",
            f"127.0.0.1:{self.port}",
            *tls,
            *self.extra,
        ]
        self.proc = subprocess.Popen(
            cmd, env=self.env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(self.log, "ab")
        )
        self.wait_ready()
        return self

    def wait_ready(self) -> None:
        import ssl

        import httpx

        trust = ssl.create_default_context(cafile=str(self.certs["ca"]))
        for _ in range(300):
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"amber serve exited with {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.base}/healthz", verify=trust, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"amber serve did not answer /healthz:\n{self.log.read_text()}")

    def move_clock(self, seconds: float) -> None:
        """Move the server's clock (libfaketime re-reads the file at every call)."""
        self.set_offset(self.offset + seconds)

    def set_offset(self, seconds: float) -> None:
        """Set the server's clock to the real time plus `seconds`."""
        self.offset = seconds
        tmp = self.clock_file.with_suffix(".tmp")
        tmp.write_text(f"{self.offset:+.3f}\n")
        tmp.replace(self.clock_file)  # never a half-written offset

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- the operator's commands --------------------------------------------------------

    def amber(self, *args, expect: int | None = 0) -> subprocess.CompletedProcess:
        p = subprocess.run([AMBER, *map(str, args)], env=clean_env(), capture_output=True, text=True, timeout=120)
        assert "Traceback" not in p.stderr, p.stderr
        if expect is not None:
            assert p.returncode == expect, f"exit {p.returncode}:\n{p.stderr}\n{p.stdout}"
        return p

    def token(self, repo: str, role: str, *extra) -> dict:
        p = self.amber("serve", "token", "add", "--root", self.root, "--repo", repo, "--role", role, *extra, "--json")
        return json.loads(p.stdout)
