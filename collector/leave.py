"""``python -m collector leave``: a replica leaves its shared-subscription group for good.

A stop (SIGTERM) is a restart: the broker keeps the replica's session and goes on dealing it a
share of the group's messages, queued until it comes back (Mosquitto and EMQX both do; see
docs/collector.md, "Scaling down"). A replica that is never coming back must say so, or its
queue waits out the session expiry and is lost. Run with the stopped replica's identity and
spool (same settings, same host name), this command:

1. connects with the replica's client id to its session, and unsubscribes from the group, so
   the broker deals it nothing more, but still delivers what it had queued in the session;
2. spools and acknowledges that queue until nothing has arrived for ``quiet_s``;
3. disconnects with session expiry 0 (MQTT v5), so the broker drops the empty session;
4. drains the spool into InfluxDB.
"""

from __future__ import annotations

import logging
import time

from collector.service import CollectorService
from collector.settings import CollectorSettings

log = logging.getLogger(__name__)

EXIT_LEFT = 0
EXIT_NOT_DRAINED = 4  # left the group; the spool still holds readings (InfluxDB unreachable)
EXIT_NO_BROKER = 5  # could not reach the broker or its session: nothing was changed


def leave(
    settings: CollectorSettings,
    *,
    drain_timeout_s: float = 300.0,
    quiet_s: float = 1.0,
    connect_timeout_s: float = 30.0,
) -> int:
    """Leave the group for good; returns the process exit code."""
    service = CollectorService(settings, leaving=True)
    source = service.source
    service.start()
    deadline = time.monotonic() + connect_timeout_s
    while not source.unsubscribed.wait(0.1):
        if source.refused or time.monotonic() > deadline:
            log.error(
                "leave: could not unsubscribe %s from %s (%s); the session is kept",
                settings.client_id,
                settings.mqtt.url,
                source.refused or "no answer",
            )
            service.stop(flush_s=0)
            return EXIT_NO_BROKER
    # The broker hands over the queue as fast as our window frees: once nothing has come in
    # for ``quiet_s`` and the committer holds nothing, the session's queue has run dry.
    seen, quiet_since = source.received, time.monotonic()
    while time.monotonic() - quiet_since < quiet_s or service.committer.waiting():
        time.sleep(0.05)
        if source.received != seen:
            seen, quiet_since = source.received, time.monotonic()
    log.info("leave: %d queued messages taken over; ending session %s", seen, settings.client_id)
    source.end_session = True  # the DISCONNECT asks the broker to drop the session
    service.stop(flush_s=drain_timeout_s)
    left = service.spool.readings
    if left:
        log.error(
            "leave: the session is gone, but %d readings remain in %s (InfluxDB did not take "
            "them): run leave again, or start the replica, once InfluxDB is back",
            left,
            settings.spool_path,
        )
        return EXIT_NOT_DRAINED
    log.info("leave: %s has left: its spool %s is empty", settings.client_id, settings.spool_path)
    return EXIT_LEFT
