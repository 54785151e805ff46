"""Alert lifecycle after ISA-18.2 / IEC 62682, and the upsert of posted alert conditions.

States: `active_unacknowledged` → (ack) `active_acknowledged` → (condition ends) `normal`;
`active_unacknowledged` → (condition ends) `rtn_unacknowledged` → (ack) `normal`. Operators may
take any alert to `shelved` (until a time, then it re-alarms), `suppressed` (by design) or
`out_of_service`; while there, the condition is still tracked, and leaving re-evaluates it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from api.errors import IllegalTransitionError, InvalidError
from api.models import Alert, AlertEvent, Asset, Site
from api.schemas.alerts import AlertAction, AlertPost
from api.security import Principal
from api.services import audit, notify, webhooks
from api.services import work_orders as orders
from api.settings import PolicySettings

ACTIVE_STATES = frozenset({"active_unacknowledged", "active_acknowledged"})
# Where each operator action may start, and where it leads (None = re-evaluate the condition).
ACTIONS: dict[str, tuple[frozenset[str], str | None]] = {
    "shelve": (
        frozenset({"active_unacknowledged", "active_acknowledged", "rtn_unacknowledged", "normal"}),
        "shelved",
    ),
    "unshelve": (frozenset({"shelved"}), None),
    "suppress": (
        frozenset({"active_unacknowledged", "active_acknowledged", "rtn_unacknowledged", "normal"}),
        "suppressed",
    ),
    "unsuppress": (frozenset({"suppressed"}), None),
    "remove_from_service": (
        frozenset(
            {
                "active_unacknowledged",
                "active_acknowledged",
                "rtn_unacknowledged",
                "normal",
                "shelved",
                "suppressed",
            }
        ),
        "out_of_service",
    ),
    "return_to_service": (frozenset({"out_of_service"}), None),
}


def _event(  # noqa: PLR0917 (history entries read best positionally)
    session: Session,
    alert: Alert,
    event: str,
    actor: str,
    at: datetime,
    before: str | None,
    reason: str = "",
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(
        AlertEvent(
            alert_id=alert.id,
            site_id=alert.site_id,
            at=at,
            event=event,
            actor=actor,
            reason=reason,
            state_from=before,
            state_to=alert.state,
            detail=detail or {},
        )
    )
    webhooks.alert_event(session, alert, event, at)
    notify.alert_event(session, alert, event, at)


def ingest(
    session: Session,
    post: AlertPost,
    policy: PolicySettings,
    actor: str,
    now: datetime,
) -> tuple[Alert, bool]:
    """Create or update the alert of (asset, kind, failure mode); (alert, created).

    Runs inside a transaction the caller replays on a unique-constraint race: the loser of
    two concurrent inserts finds the winner's row on its second attempt.
    """
    site = session.scalar(sa.select(Site).where(Site.code == post.site))
    if site is None:
        raise InvalidError(f"unknown site {post.site!r}", where="site")
    asset = session.scalar(
        sa.select(Asset).where(Asset.site_id == site.id, Asset.code == post.asset)
    )
    if asset is None:
        raise InvalidError(f"unknown asset {post.asset!r} in site {post.site!r}", where="asset")
    alert = session.scalar(
        sa.select(Alert)
        .where(
            Alert.asset_id == asset.id,
            Alert.kind == post.kind,
            Alert.failure_mode == post.failure_mode,
        )
        .with_for_update()
    )
    created = alert is None
    if alert is None:
        alert = Alert(
            site_id=site.id,
            asset_id=asset.id,
            kind=post.kind,
            failure_mode=post.failure_mode,
            state="normal",
            condition_active=False,
            severity=post.severity,
            opened_at=post.detected_at,
            last_detected_at=post.detected_at,
            occurrences=0,
            contributors=[],
            updated_at=now,
        )
        session.add(alert)
        session.flush()
    elif post.detected_at < alert.last_detected_at:
        # A late, reordered post: the alert already reflects newer information.
        return alert, False
    alert.last_detected_at = post.detected_at
    alert.updated_at = now
    before = alert.state
    if post.state == "active":
        alert.severity = post.severity
        alert.health, alert.score, alert.threshold = post.health, post.score, post.threshold
        alert.contributors = [c.model_dump() for c in post.contributors]
        alert.message = post.message
        onset = not alert.condition_active
        if onset:
            alert.condition_active = True
            alert.occurrences += 1
            alert.opened_at = post.detected_at
            alert.cleared_at = None
            if alert.state in ("normal", "rtn_unacknowledged"):
                alert.state = "active_unacknowledged"
                alert.acknowledged_at = alert.acknowledged_by = None
            _event(
                session,
                alert,
                "activated",
                actor,
                post.detected_at,
                before,
                detail={"severity": post.severity, "score": post.score},
            )
        if alert.state in ACTIVE_STATES:
            orders.for_alert(
                session, alert, asset, policy, new_occurrence=onset, now=now, actor=actor
            )
    elif alert.condition_active:
        alert.condition_active = False
        alert.cleared_at = post.detected_at
        if alert.state == "active_unacknowledged":
            alert.state = "rtn_unacknowledged"
        elif alert.state == "active_acknowledged":
            alert.state = "normal"
        _event(session, alert, "returned_to_normal", actor, post.detected_at, before)
    return alert, created


def acknowledge(session: Session, alert: Alert, principal: Principal, now: datetime) -> None:
    """The operator has seen it: active → acknowledged, returned-to-normal → cleared."""
    before = alert.state
    if before == "active_unacknowledged":
        alert.state = "active_acknowledged"
    elif before == "rtn_unacknowledged":
        alert.state = "normal"
    else:
        raise IllegalTransitionError(
            f"an alert in state {before!r} needs no acknowledgement", state=before
        )
    alert.acknowledged_at, alert.acknowledged_by, alert.updated_at = now, principal.actor, now
    _event(session, alert, "acknowledged", principal.actor, now, before)
    audit.record(session, principal.actor, "acknowledge", "alert", alert.id)


def act(
    session: Session,
    alert: Alert,
    body: AlertAction,
    *,
    principal: Principal,
    policy: PolicySettings,
    now: datetime,
) -> None:
    """Shelve, suppress or take out of service (and back), with who/when/why recorded."""
    sources, target = ACTIONS[body.action]
    before = alert.state
    if before not in sources:
        raise IllegalTransitionError(
            f"cannot {body.action} an alert in state {before!r}",
            state=before,
            allowed_from=sorted(sources),
        )
    if body.action == "shelve":
        assert body.until is not None  # the schema requires it
        if body.until <= now:
            raise InvalidError("'until' must be in the future", where="until")
        alert.shelved_until = body.until
    if target is None:
        _reevaluate(session, alert, policy, principal.actor, now)
    else:
        alert.state = target
    if body.action != "shelve":
        alert.shelved_until = None
    alert.updated_at = now
    detail = {"until": body.until.isoformat()} if body.until else {}
    _event(session, alert, body.action, principal.actor, now, before, body.reason, detail)
    audit.record(
        session, principal.actor, body.action, "alert", alert.id, {"reason": body.reason, **detail}
    )


def _reevaluate(
    session: Session, alert: Alert, policy: PolicySettings, actor: str, now: datetime
) -> None:
    # Leaving shelved/suppressed/out-of-service re-alarms a condition that is still present.
    alert.state = "active_unacknowledged" if alert.condition_active else "normal"
    alert.acknowledged_at = alert.acknowledged_by = None
    if alert.condition_active:
        asset = session.get(Asset, alert.asset_id)
        assert asset is not None  # foreign key
        orders.for_alert(session, alert, asset, policy, new_occurrence=False, now=now, actor=actor)


def expire_shelving(session: Session, policy: PolicySettings, now: datetime) -> list[int]:
    """Unshelve alerts whose shelving ended (they re-alarm if still active); their ids."""
    due = session.scalars(
        sa.select(Alert)
        .where(Alert.state == "shelved", Alert.shelved_until <= now)
        .with_for_update()
    ).all()
    for alert in due:
        before = alert.state
        _reevaluate(session, alert, policy, "system", now)
        alert.shelved_until = None
        alert.updated_at = now
        _event(session, alert, "unshelve", "system", now, before, "shelving expired")
    return [alert.id for alert in due]
