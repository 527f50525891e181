"""RFC 3161 time-stamping: asking an authority (a TSA) for a token, and checking one.

A token says "the TSA saw this SHA-256 at this time", signed with the TSA's
certificate, which a court can check without amber (`openssl ts -verify`).
amber timestamps each checkpoint note (AUDIT-LOG.md §14.6): the request is a
DER TimeStampReq of SHA-256(note) with a fresh nonce and certReq set, POSTed as
`application/timestamp-query`; the answer, a DER TimeStampResp, is kept whole.

Requests are built and answers parsed and verified by `rfc3161-client`
(sigstore's, maintained). What it checks, and what is checked here on top:

    status granted              (the library, and `_decode` before anything is read from it)
    the imprint is SHA-256 of the note
    the nonce echoes the request's (when it is being made)
    the CMS signature verifies, at the token's own time, with a certificate chain
    whose leaf is exactly the pinned TSA certificate (extendedKeyUsage timeStamping,
    critical)

The pinned chain (`Chain`) is the TSA's certificate first, then the certificates
that issued it, up to a self-signed root (the library trusts only the chain it is
given, not certificates the token carries). On first use it is what the TSA sends,
which holds a root only when its certificate is self-signed or it sends its
issuers; otherwise `--tsa-cert` must give them. Nothing here touches the
repository (timestamps.py does).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ..clock import to_iso
from ..errors import IntegrityError, StorageError, UsageError

QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"
MAX_TOKEN = 64 << 10  # a TimeStampResp with its certificates is a few KiB; more is not one
MAX_CHAIN = 16  # certificates a pinned chain may hold
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0
SHA256_OID = x509.ObjectIdentifier("2.16.840.1.101.3.4.2.1")

Chain = list[x509.Certificate]

if TYPE_CHECKING:
    from rfc3161_client import TimeStampRequest, TimeStampResponse


class NotAToken(IntegrityError):
    """Bytes that are not an RFC 3161 TimeStampResp at all (junk, not a token for other data)."""


@dataclass(frozen=True, slots=True)
class Stamp:
    """What a token says: when (`gen_time`, ISO 8601 UTC), who (`signer`, the subject of the
    certificate it names), and its serial number."""

    gen_time: str
    signer: str
    serial: int


def load_chain(pem: bytes | str, what: str) -> Chain:
    """The certificates of a PEM file or pinned text, the TSA's own first; UsageError otherwise."""
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        certs = []
    if not certs:
        raise UsageError(f"{what}: not PEM certificates (the TSA's certificate first, then its issuers)")
    if len(certs) > MAX_CHAIN:
        raise UsageError(f"{what}: more than {MAX_CHAIN} certificates")
    if not any(_self_signed(c) for c in certs):
        raise UsageError(
            f"{what}: no root certificate: give the TSA's certificate, then the certificates that issued it up to "
            "a self-signed root"
        )
    return certs


def chain_pem(chain: Chain) -> str:
    return "".join(c.public_bytes(Encoding.PEM).decode() for c in chain)


def fingerprint(chain: Chain) -> str:
    """SHA-256 of the TSA certificate's DER, the way `openssl x509 -fingerprint -sha256` shows it."""
    return hashlib.sha256(chain[0].public_bytes(Encoding.DER)).hexdigest()


def timestamp_request(data: bytes) -> TimeStampRequest:
    """An RFC 3161 TimeStampReq for `data`: its SHA-256, a fresh nonce, the TSA's certificate asked for."""
    from rfc3161_client import HashAlgorithm, TimestampRequestBuilder

    return (
        TimestampRequestBuilder()
        .data(data)
        .hash_algorithm(HashAlgorithm.SHA256)
        .nonce(nonce=True)
        .cert_request(cert_request=True)
        .build()
    )


def stamp(url: str, note: bytes, chain: Chain | None, cacert: str | None, what: str) -> tuple[bytes, Chain]:
    """Ask the TSA at `url` for a token of `note`; (the TimeStampResp as answered, the chain it
    verifies under). `chain` None pins on first use: the certificates the TSA sends, which must
    then verify the token themselves. IntegrityError for an answer that is not a token of this
    note (other data, another nonce, another certificate, a bad signature); StorageError for a
    TSA that cannot be reached or answers with an HTTP error."""
    request = timestamp_request(note)
    answer = post(url, request.as_bytes(), cacert, what)
    resp = _decode(answer, f"{what}: the answer of {url}")
    if resp.tst_info.nonce != request.nonce:
        raise IntegrityError(f"{what}: the answer of {url} does not echo the request's nonce (a replayed token)")
    if chain is None:
        chain = embedded_chain(resp, f"{what}: the answer of {url}")
    _verify(resp, note, chain, f"{what}: the answer of {url}", request.nonce)
    return answer, chain


def check(token: bytes, note: bytes, chain: Chain, what: str) -> Stamp:
    """The stamp of a kept token, verified offline: a token of exactly `note`, signed under
    `chain` at its own time. NotAToken for junk; IntegrityError naming the problem otherwise."""
    resp = _decode(token, what)
    _verify(resp, note, chain, what, None)
    return _stamp(resp, chain[0])


def inspect(token: bytes, note: bytes, what: str) -> Stamp:
    """The stamp of a token of exactly `note`, its signature NOT checked against any trusted
    certificate (for a verifier that was given none: it can say only what the token claims)."""
    resp = _decode(token, what)
    _imprint(resp, note, what)
    return _stamp(resp, _signer(resp))


def embedded_chain(resp: TimeStampResponse, what: str) -> Chain:
    """The certificates a TSA sent in its token, the one that signed it first, if they reach a
    root; UsageError asking for `--tsa-cert` otherwise."""
    signer = _signer(resp)
    if signer is None:
        raise UsageError(
            f"{what}: the TSA sent no certificate that signed the token; give its certificate with --tsa-cert FILE"
        )
    chain = [signer] + [c for c in _certificates(resp) if c != signer]
    if not any(_self_signed(c) for c in chain):
        raise UsageError(
            f"{what}: the TSA sent its certificate ({signer.subject.rfc4514_string()}) without the certificates "
            "that issued it: give them with --tsa-cert FILE (its certificate, then its issuers up to the root)"
        )
    return chain


def post(url: str, body: bytes, cacert: str | None, what: str) -> bytes:
    """POST a TimeStampReq; the body of a 200 answer (at most MAX_TOKEN bytes). HTTPS trusts the
    system's certificate authorities, or only `cacert` (--cacert, else AMBER_CACERT) as `rest:` does."""
    import os
    import ssl

    import urllib3
    from urllib3.exceptions import HTTPError, SSLError

    extra: dict[str, Any] = {}
    if url.startswith("https:"):
        extra["ssl_context"] = ssl.create_default_context(cafile=cacert or os.environ.get("AMBER_CACERT") or None)
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT), retries=False, **extra
    )
    try:
        resp = http.request(
            "POST",
            url,
            body=body,
            headers={"Content-Type": QUERY_TYPE, "Accept": REPLY_TYPE},
            redirect=False,
            preload_content=False,
        )
        data = resp.read(MAX_TOKEN + 1)
        resp.release_conn()
    except HTTPError as e:
        if isinstance(e, SSLError) or isinstance(getattr(e, "reason", None), SSLError):
            raise StorageError(
                f"{what}: TLS with the TSA at {url} failed ({e}); if its certificate is not trusted, give its "
                "certificate authority with --cacert FILE or AMBER_CACERT"
            ) from None
        raise StorageError(f"{what}: cannot reach the TSA at {url} ({type(e).__name__}: {e})") from None
    finally:
        http.clear()
    if resp.status != 200:
        raise StorageError(f"{what}: the TSA at {url} answered HTTP {resp.status}")
    if len(data) > MAX_TOKEN:
        raise IntegrityError(f"{what}: the TSA at {url} answered more than {MAX_TOKEN} bytes")
    return data


# -- the checks --------------------------------------------------------------------------


def _decode(data: bytes, what: str) -> TimeStampResponse:
    """The parsed TimeStampResp, its status granted; NotAToken for bytes that are not one."""
    from rfc3161_client import PKIStatus, decode_timestamp_response

    if len(data) > MAX_TOKEN:
        raise NotAToken(f"{what}: {len(data)} bytes, larger than any timestamp token")
    try:
        resp = decode_timestamp_response(bytes(data))
    except Exception as e:  # the Rust parser's errors on hostile bytes have no common class
        raise NotAToken(f"{what}: not an RFC 3161 timestamp response ({_brief(e)})") from None
    if resp.status != PKIStatus.GRANTED:
        raise IntegrityError(f"{what}: the TSA did not grant this timestamp (status {resp.status})")
    try:
        resp.tst_info  # noqa: B018 - a granted answer must carry a token; reading it parses it
    except Exception as e:  # as above
        raise NotAToken(f"{what}: granted, but it holds no readable token ({_brief(e)})") from None
    return resp


def _imprint(resp: TimeStampResponse, note: bytes, what: str) -> None:
    imprint = resp.tst_info.message_imprint
    if imprint.hash_algorithm != SHA256_OID or imprint.message != hashlib.sha256(note).digest():
        raise IntegrityError(f"{what}: a timestamp of other data, not of this checkpoint")


def _verify(resp: TimeStampResponse, note: bytes, chain: Chain, what: str, nonce: int | None) -> None:
    """The imprint, then the signature and the certificate: `chain[0]` must be the signer."""
    from rfc3161_client import VerificationError, VerifierBuilder

    _imprint(resp, note, what)
    leaf = chain[0]
    roots = [c for c in chain if _self_signed(c)]
    builder = VerifierBuilder(tsa_certificate=leaf, roots=roots, intermediates=[c for c in chain if c not in roots])
    if nonce is not None:
        builder = builder.nonce(nonce)
    try:
        builder.build().verify(resp, hashlib.sha256(note).digest())
    except (VerificationError, ValueError) as e:  # ValueError: an embedded certificate that does not parse
        raise IntegrityError(
            f"{what}: not signed by the TSA certificate {leaf.subject.rfc4514_string()} "
            f"(SHA-256 {fingerprint(chain)[:16]}…): {e}"
        ) from None


def _self_signed(cert: x509.Certificate) -> bool:
    return cert.subject == cert.issuer


def _certificates(resp: TimeStampResponse) -> Chain:
    """The certificates a token carries (none when its certificate set does not parse)."""
    try:
        ders = sorted(resp.signed_data.certificates)
    except ValueError:
        return []
    out = []
    for der in ders:
        try:
            out.append(x509.load_der_x509_certificate(der))
        except ValueError:
            continue  # one unreadable certificate is not the signer's; the signature check says the rest
    return out


def _signer(resp: TimeStampResponse) -> x509.Certificate | None:
    """The embedded certificate the token's SignerInfo names (issuer and serial), if any."""
    try:
        infos = list(resp.signed_data.signer_infos)
    except ValueError:
        return None
    if len(infos) != 1:
        return None
    return next(
        (c for c in _certificates(resp) if c.issuer == infos[0].issuer and c.serial_number == infos[0].serial_number),
        None,
    )


def _brief(e: Exception) -> str:
    text = f"{type(e).__name__}: {e}"
    return text if len(text) <= 300 else text[:300] + "…"


def _stamp(resp: TimeStampResponse, signer: x509.Certificate | None) -> Stamp:
    when = resp.tst_info.gen_time
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.UTC)
    who = signer.subject.rfc4514_string() if signer is not None else "an unnamed signer"
    return Stamp(to_iso(when), who, resp.tst_info.serial_number)
