"""Start the server: uvicorn over the Starlette application, with TLS unless on loopback."""

from __future__ import annotations

import ipaddress
import logging
import sys

from ..errors import UsageError
from .app import Limits, Server

DEFAULT_LISTEN = "127.0.0.1:8443"


def parse_listen(listen: str) -> tuple[str, int]:
    """HOST:PORT (an IPv6 host in brackets) as (host, port)."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535 or not host:
        raise UsageError(f"--listen {listen!r}: give HOST:PORT, e.g. 127.0.0.1:8443 or [::1]:8443")
    return host.strip("[]"), int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _header_timeout_protocol(seconds: float):
    """uvicorn's h11 protocol, closing a connection whose request headers do not arrive within
    `seconds` (uvicorn times out only idle keep-alive connections, so a client sending half a
    request line would hold its connection forever)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderTimeoutProtocol(H11Protocol):
        _header_timer = None

        def data_received(self, data: bytes) -> None:
            idle = self.cycle is None or self.cycle.response_complete
            if idle and self._header_timer is None:
                self._header_timer = self.loop.call_later(seconds, self._headers_late, self.cycle)
            super().data_received(data)

        def connection_made(self, transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._header_timer = self.loop.call_later(seconds, self._headers_late, None)

        def _headers_late(self, cycle_then) -> None:
            self._header_timer = None
            if self.cycle is cycle_then and not self.transport.is_closing():
                self.transport.close()  # no new request began: the headers never came

    return HeaderTimeoutProtocol


def serve(
    root: str,
    listen: str = DEFAULT_LISTEN,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    insecure_http: bool = False,
    limits: Limits | None = None,
) -> None:
    """Serve the repositories under `root` until interrupted."""
    import uvicorn

    host, port = parse_listen(listen)
    if bool(tls_cert) != bool(tls_key):
        raise UsageError("give both --tls-cert and --tls-key, or neither")
    if not tls_cert and not insecure_http and not is_loopback(host):
        raise UsageError(
            f"{host} is not a loopback address: serve it with --tls-cert and --tls-key "
            "(or, on a network you trust completely, --insecure-http)"
        )
    server = Server(root, limits)
    logging.basicConfig(level=logging.INFO, format="amber serve: %(message)s", stream=sys.stderr)
    scheme = "https" if tls_cert else "http"
    print(
        f"amber serve: {server.paths.root} on {scheme}://{listen}; server key {server.key.public_text()}",
        file=sys.stderr,
        flush=True,
    )
    config = uvicorn.Config(
        server.app(),
        host=host,
        port=port,
        ssl_certfile=tls_cert,
        ssl_keyfile=tls_key,
        lifespan="off",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=30,
        timeout_graceful_shutdown=3,
        server_header=False,
        http=_header_timeout_protocol(server.limits.io_timeout),
    )
    uvicorn.Server(config).run()
