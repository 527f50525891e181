"""A real RFC 3161 time-stamping authority on loopback, for the tests of TSA witnesses.

The tokens are made by OpenSSL's TSA (`openssl ts -reply`), a real implementation
independent of amber and of the client library amber uses; this module only puts it
behind HTTP (`POST`, `application/timestamp-query` in, `application/timestamp-reply`
out) and makes its certificates with `cryptography`: a test CA, and under it a TSA
certificate with extendedKeyUsage timeStamping, critical (RFC 3161 §2.3).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import shutil
import ssl
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

OPENSSL = shutil.which("openssl")
MAX_QUERY = 64 << 10


@dataclass
class Pki:
    """A CA and the TSA certificate it issued, as PEM files in `folder`."""

    folder: Path
    ca: Path  # the CA's certificate
    tsa: Path  # the TSA's certificate
    key: Path  # the TSA's private key
    chain: Path  # the TSA's certificate, then the CA's: what `--tsa-cert` takes
    ca_key: object = None  # the CA's private key (to issue a TLS certificate for the server)


def make_pki(folder: Path, name: str = "amber test", *, self_signed: bool = False) -> Pki:
    """A test CA and a TSA certificate it issued; `self_signed`: a TSA certificate that is its
    own root (a private TSA), and no CA."""
    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )  # keyCertSign, cRLSign
        .sign(ca_key, hashes.SHA256())
    )
    tsa_key = ec.generate_private_key(ec.SECP256R1())
    tsa_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} TSA")])
    if self_signed:
        ca_key, ca_name = tsa_key, tsa_name
    tsa = (
        x509.CertificateBuilder()
        .subject_name(tsa_name)
        .issuer_name(ca_name)
        .public_key(tsa_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True
        )  # digitalSignature, nonRepudiation
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    pki = Pki(folder, folder / "ca.pem", folder / "tsa.pem", folder / "tsa.key", folder / "chain.pem")
    if self_signed:
        ca = tsa
    pki.ca_key = ca_key
    pki.ca.write_bytes(ca.public_bytes(pem))
    pki.tsa.write_bytes(tsa.public_bytes(pem))
    pki.chain.write_bytes(tsa.public_bytes(pem) + (b"" if self_signed else ca.public_bytes(pem)))
    pki.key.write_bytes(tsa_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return pki


CONFIG = """\
[ tsa ]
default_tsa = tsa_config1

[ tsa_config1 ]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.pem
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
other_policies = 1.2.3.4.5.6
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


class TsaServer:
    """OpenSSL's TSA over HTTP on 127.0.0.1, in a thread of the test process. `replay`: answer
    every request with these bytes instead (an old token replayed)."""

    def __init__(self, pki: Pki, *, tls: bool = False) -> None:
        assert OPENSSL, "openssl is not installed"
        self.pki = pki
        self.config = pki.folder / "tsa.cnf"
        self.config.write_text(CONFIG.format(dir=pki.folder))
        (pki.folder / "serial").write_text("01\n")
        self.lock = threading.Lock()  # `openssl ts -reply` numbers its tokens in one serial file
        self.replay: bytes | None = None
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if self.headers.get("Content-Type") != "application/timestamp-query" or not 0 < length <= MAX_QUERY:
                    self.send_error(400, "not a timestamp query")
                    return
                query = self.rfile.read(length)
                server.requests += 1
                answer = server.replay if server.replay is not None else server.reply(query)
                if answer is None:
                    self.send_error(500, "the TSA failed")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        scheme = "http"
        if tls:
            scheme = "https"
            self.httpd.socket = _tls_context(pki).wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}/tsa"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def reply(self, query: bytes) -> bytes | None:
        """OpenSSL's TimeStampResp for a DER TimeStampReq."""
        with self.lock, tempfile.TemporaryDirectory() as tmp:
            q, r = Path(tmp) / "q.tsq", Path(tmp) / "r.tsr"
            q.write_bytes(query)
            p = subprocess.run(
                [
                    OPENSSL,
                    "ts",
                    "-reply",
                    "-config",
                    str(self.config),
                    "-queryfile",
                    str(q),
                    "-signer",
                    str(self.pki.tsa),
                    "-inkey",
                    str(self.pki.key),
                    "-out",
                    str(r),
                ],
                capture_output=True,
                timeout=60,
            )
            return r.read_bytes() if p.returncode == 0 and r.exists() else None

    def stop(self) -> None:
        """Stop answering: the port refuses connections from now on."""
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)


def _tls_context(pki: Pki) -> ssl.SSLContext:
    """A server certificate for 127.0.0.1 issued by the test CA (give `pki.ca` as --cacert)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    ca = x509.load_pem_x509_certificate(pki.ca.read_bytes())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(pki.ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (pki.folder / "tls.pem").write_bytes(cert.public_bytes(pem))
    (pki.folder / "tls.key").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.folder / "tls.pem", pki.folder / "tls.key")
    return ctx


def token_for(url: str, data: bytes) -> bytes:
    """A real token from the TSA at `url` for `data` (what an attacker can get for any bytes)."""
    import urllib.request

    from amber.audit.tsa import timestamp_request

    req = timestamp_request(data)
    r = urllib.request.Request(
        url, data=req.as_bytes(), headers={"Content-Type": "application/timestamp-query"}, method="POST"
    )
    with urllib.request.urlopen(r, timeout=30) as resp:
        return resp.read()
