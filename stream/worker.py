"""Run one Faust worker from Settings (what `recstream worker` does)."""

from __future__ import annotations

import asyncio
import logging

import faust

from stream.adapters.event_loop import use_event_loop
from stream.adapters.topics import detect_flavour, ensure_topics
from stream.app import create_app
from stream.settings import Settings

log = logging.getLogger(__name__)


async def prepare(settings: Settings) -> str:
    """Detect the broker flavour and create topics with their final partition counts."""
    flavour = await detect_flavour(settings)
    await ensure_topics(settings)
    return flavour


class Worker(faust.Worker):
    """Faust's worker, saying which signal stopped it. mode stops on SIGTERM without a word
    and exits 0, so a worker stopped from outside read in its log like one that stopped by
    itself (a CI failure showed a fresh worker stop 0.1 s after start with nothing logged).
    Named ``Worker`` because its log label is the class name, and
    ``stream.readiness.READY_MARK`` reads it."""

    def _on_sigterm(self) -> None:
        log.warning("SIGTERM received: stopping")
        super()._on_sigterm()

    def _on_sigint(self) -> None:
        log.warning("SIGINT received: stopping")
        super()._on_sigint()


def run_worker(settings: Settings, loglevel: str = "info") -> None:
    """Blocks until the worker stops; exits non-zero if an agent cannot proceed."""
    loop = use_event_loop(settings.event_loop)  # before any loop exists (Faust's thread too)
    flavour = asyncio.run(prepare(settings))
    log.info(
        "broker %s is %s; bundled-broker workarounds %s; event loop %s",
        settings.kafka_bootstrap,
        flavour,
        "ON" if flavour == "tansu" else "off",
        loop,
    )
    rapp = create_app(settings, flavour)
    worker = Worker(rapp.faust_app, loglevel=loglevel, quiet=True, loop=asyncio.new_event_loop())
    worker.execute_from_commandline()
