"""A paho client's username, password and TLS from [mqtt]: the daemon's link and the
`request` command's connect the same way."""

from __future__ import annotations

import ssl

import paho.mqtt.client as mqtt

from bridge.config import MqttSettings


def apply_credentials(client: mqtt.Client, settings: MqttSettings) -> None:
    if settings.username:
        client.username_pw_set(settings.username, settings.password.get_secret_value() or None)
    if settings.tls is not None:
        tls = settings.tls
        client.tls_set(
            ca_certs=str(tls.ca_certs) if tls.ca_certs else None,
            certfile=str(tls.certfile) if tls.certfile else None,
            keyfile=str(tls.keyfile) if tls.keyfile else None,
            cert_reqs=ssl.CERT_REQUIRED,
        )
