"""No secrets and no personal data in a worker's logs at INFO (issue 6, security basics).

A worker runs with a SASL password and a Qdrant API key configured (the bundled broker cannot
check SASL, so the protocol stays PLAINTEXT and the credentials ride along unused there; the Qdrant
client is built with its key against a server that is down, so its errors are logged), and
serves a user whose id and payload carry recognisable markers — valid events, a dead-lettered one
(mis-keyed: its error names the user) and an erasure. Its whole output (stdout and stderr) must
contain none of the markers.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from stream.broker import free_port
from stream.settings import KafkaSecurity, Settings
from tests.integration.test_pipeline import CATALOG, event, send_and_wait

pytestmark = pytest.mark.integration

PASSWORD = "pw-7Hq2-never-log-me"
API_KEY = "qk-93ZZ-never-log-me"
USER = "person-4711-private"
QUERY = "query-text-private-0815"


def test_secrets_are_masked_in_settings_repr() -> None:
    settings = Settings(
        kafka_security=KafkaSecurity("SASL_SSL", "SCRAM-SHA-512", "svc", PASSWORD),
        qdrant_api_key=API_KEY,
    )
    text = repr(settings) + str(settings)
    assert PASSWORD not in text and API_KEY not in text
    assert "SCRAM-SHA-512" in text  # the rest stays visible for debugging


def test_worker_logs_hold_no_secrets_user_ids_or_payloads(deployment: Any) -> None:
    deployment.produce([("catalog", m) for m in CATALOG])
    worker = deployment.worker(
        "hygiene",
        RECSTREAM_KAFKA_SASL_MECHANISM="SCRAM-SHA-256",
        RECSTREAM_KAFKA_SASL_USERNAME="svc-recstream",
        RECSTREAM_KAFKA_SASL_PASSWORD=PASSWORD,
        RECSTREAM_QDRANT_URL=f"http://127.0.0.1:{free_port()}",  # down: its errors get logged
        RECSTREAM_QDRANT_API_KEY=API_KEY,
    ).start()
    worker.wait_ready()
    click = event("clicks", USER, item_id="sku-3", context={"query": QUERY})
    assert send_and_wait(deployment, [click])["items"]
    mis_keyed = orjson.dumps(event("clicks", USER, item_id="sku-4")[1])
    unknown = orjson.dumps(event("clicks", USER, item_id=f"sku-{QUERY}")[1])
    deployment.produce(
        [("clicks", (b"someone-else", mis_keyed)), ("clicks", (USER.encode(), unknown))], raw=True
    )
    assert send_and_wait(deployment, [event("searches", USER, query=QUERY)])["items"]
    deployment.produce([("forget", event("forget", USER)[1])])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # both dead letters and a failed Qdrant write logged
        metrics = worker.metrics()
        dead = sum(v for k, v in metrics.items() if k.startswith("recstream_dead_letters_total"))
        if dead >= 2 and metrics.get("recstream_qdrant_errors_total", 0) >= 1:
            break
        time.sleep(0.5)
    assert worker.stop() == 0
    log = worker.log()
    assert "dead letter" in log and "qdrant sink write failed" in log  # what we look through
    for secret in (PASSWORD, API_KEY, USER, QUERY):
        lines = [line for line in log.splitlines() if secret in line]
        assert not lines, f"{secret!r} logged: {lines[:3]}"
