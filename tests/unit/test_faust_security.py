"""Faust's clients get the same Kafka security as ours (TLS/SASL clusters)."""

from __future__ import annotations

from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from stream.adapters.faust_security import faust_credentials
from stream.settings import Settings


def auth(env: dict[str, str]) -> dict[str, object]:
    creds = faust_credentials(Settings.from_env(env).kafka_security)
    return credentials_to_aiokafka_auth(creds) if creds is not None else {}


def test_plaintext_needs_no_credentials() -> None:
    assert faust_credentials(Settings.from_env({}).kafka_security) is None


def test_sasl_ssl_reaches_faust_aiokafka_clients() -> None:
    got = auth(
        {
            "RECSTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "RECSTREAM_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "RECSTREAM_KAFKA_SASL_USERNAME": "recstream",
            "RECSTREAM_KAFKA_SASL_PASSWORD": "secret",
        }
    )
    assert got["security_protocol"] == "SASL_SSL"
    assert got["sasl_mechanism"] == "SCRAM-SHA-512"
    assert got["sasl_plain_username"] == "recstream"
    assert got["sasl_plain_password"] == "secret"
    assert got["ssl_context"] is not None


def test_tls_only() -> None:
    got = auth({"RECSTREAM_KAFKA_SECURITY_PROTOCOL": "SSL"})
    assert got["security_protocol"] == "SSL" and got["ssl_context"] is not None
