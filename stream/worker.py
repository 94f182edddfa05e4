"""Run one Faust worker from Settings (what `recstream worker` does)."""

from __future__ import annotations

import asyncio
import logging

import faust

from stream.adapters.topics import detect_flavour, ensure_topics
from stream.app import create_app
from stream.settings import Settings

log = logging.getLogger(__name__)


async def prepare(settings: Settings) -> str:
    """Detect the broker flavour and create topics with their final partition counts."""
    flavour = await detect_flavour(settings)
    await ensure_topics(settings)
    return flavour


def run_worker(settings: Settings, loglevel: str = "info") -> None:
    """Blocks until the worker stops; exits non-zero if an agent cannot proceed."""
    flavour = asyncio.run(prepare(settings))
    log.info(
        "broker %s is %s; bundled-broker workarounds %s",
        settings.kafka_bootstrap,
        flavour,
        "ON" if flavour == "tansu" else "off",
    )
    rapp = create_app(settings, flavour)
    worker = faust.Worker(
        rapp.faust_app, loglevel=loglevel, quiet=True, loop=asyncio.new_event_loop()
    )
    worker.execute_from_commandline()
