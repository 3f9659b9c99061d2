"""A throw-away certificate authority and a server certificate for 127.0.0.1/localhost
(trustme), written to a folder so FTPS, HTTPS and mosquitto can load them."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TestCertificates:
    __test__ = False  # not a pytest test class, whatever its name says
    ca_cert: Path  # PEM of the CA, for clients
    server_cert: Path  # PEM chain of the server certificate
    server_key: Path  # PEM private key

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.server_cert, self.server_key)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_cert))


def make_certificates(folder: Path) -> TestCertificates:
    """Create a CA and a certificate for 127.0.0.1 and localhost in `folder`."""
    import trustme  # a dev/demo dependency only

    folder.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    out = TestCertificates(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    ca.cert_pem.write_to_path(str(out.ca_cert))
    cert.private_key_pem.write_to_path(str(out.server_key))
    with open(out.server_cert, "wb") as f:
        for blob in cert.cert_chain_pems:
            f.write(blob.bytes())
    return out
