"""Kafka security for Faust's own clients (agents' consumer, producer, table changelogs).

Our aiokafka clients (outputs, catalog replica, admin) take ``KafkaSecurity.aiokafka_kwargs``;
Faust builds its clients from ``broker_credentials`` instead, so a worker pointed at a TLS/SASL
cluster needs both, from the same settings.
"""

from __future__ import annotations

import ssl
from typing import Any

import faust

from stream.settings import KafkaSecurity


def faust_credentials(security: KafkaSecurity) -> Any | None:
    """``broker_credentials`` for ``faust.App`` (None = PLAINTEXT)."""
    protocol = security.protocol.upper()
    if protocol == "PLAINTEXT":
        return None
    context = None
    if protocol in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(cafile=security.ssl_cafile)
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    if protocol not in ("SASL_PLAINTEXT", "SASL_SSL"):
        raise ValueError(f"unsupported RECSTREAM_KAFKA_SECURITY_PROTOCOL {security.protocol!r}")
    return faust.SASLCredentials(
        username=security.sasl_username,
        password=security.sasl_password,
        ssl_context=context,
        mechanism=security.sasl_mechanism or "PLAIN",
    )
