"""Recognising a redelivered bad message, so that it adds no second dead letter (issue 15 item 9).

A collector killed between a group's commit and its PUBACKs gets those messages again after it
restarts. Good readings need nothing here: InfluxDB keeps one point per series and timestamp,
so a redelivered reading written again changes nothing. A dead letter is a row of our own, so
each one stores its message's identity (``collector.spool_records.MessageIdentity``: packet id,
digest, DUP flag) in ``dead_letter_keys``, in the same transaction, which is the one the message's
acknowledgement waits for. A message with the DUP flag whose packet id and digest match a key
is that message again: it is acknowledged and stored nowhere.
"""

from __future__ import annotations

import sqlite3

from collector.spool_records import DeadLetter, MessageIdentity

# How long a key can name a redelivery, in MQTT messages committed since (the spool's
# ``mqtt_messages`` total). The broker gives a packet id to another message only once our ack for
# it was processed, and Mosquitto hands ids out in turn, so an id comes back after 65,535
# deliveries: a key older than half of that belongs to a message acknowledged long ago, and a
# DUP message with its id and payload is another message (its first delivery was lost with a
# crash before any commit). A real redelivery is a few commit groups and in-flight windows old
# at most (each redelivery committed refreshes its key, for the next crash).
REDELIVERY_HORIZON = 32_768
_PRUNE_EVERY = 4_096  # messages between two deletes of expired keys

# packet id -> (digest, the spool's mqtt_messages total when the key was written)
Keys = dict[int, tuple[bytes, int]]


class DeadLetterKeys:
    """The ``dead_letter_keys`` table, mirrored in memory (at most one key per packet id, and
    none at all while no bad input arrives). Every method runs under the spool's lock."""

    def __init__(self, db: sqlite3.Connection, horizon: int = REDELIVERY_HORIZON) -> None:
        self._db = db
        self._horizon = horizon
        self._keys: Keys = {
            int(pid): (bytes(digest), int(seq))
            for pid, digest, seq in db.execute(
                "SELECT packet_id, digest, seq FROM dead_letter_keys"
            )
        }

    def first_deliveries(self, dead: list[DeadLetter], seq: int) -> tuple[list[DeadLetter], Keys]:
        """(the dead letters to store, the keys to write for a group dated ``seq``).

        A DUP delivery matching a key within the horizon is a redelivery and is left out; its
        key is refreshed, since it is in flight again until this group's ack. Anything else is
        stored and keyed (a key for its packet id names the previous message with that id,
        acknowledged since, so it is replaced).
        """
        stored: list[DeadLetter] = []
        keys: Keys = {}
        for letter in dead:
            identity: MessageIdentity | None = letter.identity
            if identity is None:  # QoS 0 (never redelivered), serial, InfluxDB rejections
                stored.append(letter)
                continue
            known = keys.get(identity.packet_id) or self._keys.get(identity.packet_id)
            keys[identity.packet_id] = (identity.digest, seq)
            if not (
                identity.redelivery
                and known is not None
                and known[0] == identity.digest
                and known[1] >= seq - self._horizon
            ):
                stored.append(letter)
        return stored, keys

    def write(self, keys: Keys, before: int, messages: int) -> list[int]:
        """Write a group's keys and, every ``_PRUNE_EVERY`` messages, delete expired ones;
        returns the packet ids deleted. Call inside the group's transaction."""
        if keys:
            self._db.executemany(
                "INSERT OR REPLACE INTO dead_letter_keys (packet_id, digest, seq) VALUES (?, ?, ?)",
                [(pid, digest, seq) for pid, (digest, seq) in keys.items()],
            )
        after = before + messages
        if not self._keys or after // _PRUNE_EVERY == before // _PRUNE_EVERY:
            return []
        floor = after - self._horizon
        expired = [pid for pid, (_, seq) in self._keys.items() if seq < floor and pid not in keys]
        if expired:
            self._db.execute("DELETE FROM dead_letter_keys WHERE seq < ?", (floor,))
        return expired

    def committed(self, keys: Keys, expired: list[int]) -> None:
        """The transaction that wrote ``keys`` and deleted ``expired`` is committed."""
        self._keys.update(keys)
        for packet_id in expired:
            del self._keys[packet_id]

    def __len__(self) -> int:
        return len(self._keys)
