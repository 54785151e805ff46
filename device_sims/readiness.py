"""Is an asset scored yet? ``inject`` asks analytics (``GET /assets`` on its ops port) first.

A fault injected while analytics still learns an asset's normal behaviour becomes part of that
normal, and no alert ever comes; so ``inject`` warns and stops (or waits, with ``--wait``) until
the asset is scored. Only HTTP and JSON: device_sims imports nothing of equipmon.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

DEFAULT_ANALYTICS = "http://127.0.0.1:9102"


@dataclass(frozen=True)
class Readiness:
    """One asset as analytics sees it: scored, learning (until when), or not seen yet."""

    asset: str
    scoring: bool
    seen: bool
    learning_until: datetime | None = None
    message: str | None = None

    def explain(self, now: datetime) -> str:
        """Why a fault should wait, for people."""
        if not self.seen:
            return f"analytics has not seen {self.asset} yet (no data read for it so far)"
        text = f"analytics is still learning {self.asset}'s normal behaviour"
        if self.message:
            text += f" ({self.message})"
        if self.learning_until is not None:
            left = max(0.0, (self.learning_until - now).total_seconds())
            text += (
                f"; it is scored from {self.learning_until:%H:%M:%S} UTC at the latest "
                f"(in {_minutes(left)})"
            )
        return text


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def _parse_time(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def ask(analytics_url: str, asset: str, site: str | None = None) -> Readiness:
    """What analytics says about an asset (OSError when it cannot be asked)."""
    try:
        response = httpx.get(analytics_url.rstrip("/") + "/assets", timeout=10)
        response.raise_for_status()
        document: dict[str, Any] = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise OSError(f"analytics at {analytics_url} could not be asked: {exc}") from exc
    items = [
        item
        for item in document.get("assets", [])
        if item.get("asset") == asset and (site is None or item.get("site") == site)
    ]
    if len(items) > 1:
        sites = ", ".join(sorted(str(i.get("site")) for i in items))
        raise ValueError(f"{asset} is on several sites ({sites}): name one with --site")
    if not items:
        return Readiness(asset, scoring=False, seen=False)
    item = items[0]
    return Readiness(
        asset,
        scoring=bool(item.get("scoring")),
        seen=True,
        learning_until=_parse_time(item.get("learning_until")),
        message=item.get("message"),
    )


def wait_until_scored(
    analytics_url: str,
    asset: str,
    site: str | None,
    *,
    timeout_s: float,
    on_wait: Callable[[Readiness], None] = lambda _r: None,
    poll_s: float = 2.0,
) -> Readiness:
    """Poll until analytics scores the asset (TimeoutError after ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    reported: tuple[bool, datetime | None] | None = None
    while True:
        state = ask(analytics_url, asset, site)
        if state.scoring:
            return state
        if (state.seen, state.learning_until) != reported:
            reported = (state.seen, state.learning_until)
            on_wait(state)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{asset} is still not scored after {timeout_s:.0f} s")
        time.sleep(poll_s)
