"""The dashboard in headless Chromium against a real API (uvicorn), SQLite and InfluxDB.

Facilities sees an alert arrive without reloading, acknowledges it; a technician claims, starts
and completes its work order. Screenshots of each page (desktop and phone) go to
a temporary folder, or to ``EQUIPMON_SCREENSHOTS_DIR`` (``docs/screenshots`` refreshes the
documentation's): a test run leaves the checkout as it found it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect

from api.db import make_engine, make_sessionmaker
from api.main import create_app
from api.services.sweeps import sweep
from api.settings import PolicySettings
from telemetry.influx.client import InfluxClient
from telemetry.influx.settings import InfluxSettings
from tests.api.helpers import make_settings, serve
from tests.browser.seed import PASSWORD, Stack, readings, seed

SHOTS = Path(
    os.environ.get("EQUIPMON_SCREENSHOTS_DIR") or Path(tempfile.gettempdir()) / "equipmon-shots"
)
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}
# The live poll runs every 4 s; an update must show within a few polls.
LIVE_TIMEOUT_MS = 20_000

pytestmark = pytest.mark.browser


@pytest.fixture
def stack(tmp_path: Path, influx_settings: InfluxSettings) -> Iterator[Stack]:
    """The real API on a free port, SQLite in tmp_path, readings in a real InfluxDB."""
    settings = make_settings(f"sqlite:///{tmp_path / 'ui.db'}", influx=influx_settings)
    assert settings.admin_token
    assert settings.service_token
    writer = InfluxClient(influx_settings)
    writer.write_readings(readings(datetime.now(UTC)))
    writer.close()
    with serve(create_app(settings)) as url:
        harness = Stack(
            url,
            settings.admin_token.get_secret_value(),
            settings.service_token.get_secret_value(),
            settings.database_url,
        )
        yield harness
        harness.client.close()


def login(page: Page, url: str, username: str) -> None:
    """Log in through the form."""
    page.goto(f"{url}/ui/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


def shot(page: Page, name: str) -> None:
    """Save a screenshot and check the page does not scroll sideways."""
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{name}: {overflow} px of horizontal scrolling"
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_facilities_and_technician_flow(browser: Browser, stack: Stack) -> None:
    now = datetime.now(UTC)
    seeded = seed(stack, now)
    SHOTS.mkdir(parents=True, exist_ok=True)
    desk = browser.new_context(viewport=DESKTOP).new_page()
    login(desk, stack.url, "dana")
    expect(desk).to_have_url(f"{stack.url}/ui/fleet")
    expect(desk.locator(".stat").first).to_contain_text("1")
    expect(desk.get_by_text("Chilled water pump 1")).to_be_visible()
    shot(desk, "fleet-desktop")

    desk.goto(f"{stack.url}/ui/alerts")
    expect(desk.get_by_text("supply air temperature has not changed")).to_be_visible()
    expect(desk.get_by_text("vibration and bearing temperature")).to_have_count(0)
    # The analytics service posts the anomaly after the page loaded: live update shows it.
    alert = stack.call(
        "POST",
        "/api/v1/alerts",
        stack.service,
        json={
            "site": "plant-a",
            "asset": "pump-01",
            "kind": "equipment_anomaly",
            "failure_mode": "bearing_wear",
            "state": "active",
            "severity": "high",
            "health": 38,
            "score": 7.4,
            "threshold": 5.0,
            "detected_at": (now - timedelta(minutes=25)).isoformat(),
            "contributors": [
                {"sensor": "vibration_rms", "share": 0.72},
                {"sensor": "bearing_temp", "share": 0.21},
                {"sensor": "motor_current", "share": 0.07},
            ],
            "message": "vibration and bearing temperature rising together",
        },
    )
    row = desk.locator(f'li[data-alert-id="{alert["id"]}"]')
    expect(row).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    expect(row.locator("[data-state]")).to_have_attribute("data-state", "active_unacknowledged")
    shot(desk, "alerts-desktop")
    row.get_by_role("button", name="Acknowledge").click()
    expect(desk.locator(".flash")).to_have_text("Alert acknowledged.")
    expect(row.locator("[data-state]")).to_have_attribute("data-state", "active_acknowledged")
    assert stack.call("GET", f"/api/v1/alerts/{alert['id']}", stack.admin)["state"] == (
        "active_acknowledged"
    )

    desk.goto(f"{stack.url}/ui/alerts/{alert['id']}")
    chart = desk.locator(".chart")
    expect(chart).to_have_attribute("data-ready", "3", timeout=LIVE_TIMEOUT_MS)
    expect(chart.locator("svg path.line")).to_have_count(3)
    expect(desk.get_by_text("acknowledged by dana")).to_be_visible()
    shot(desk, "alert-desktop")
    desk.goto(f"{stack.url}/ui/board")
    expect(desk.get_by_text(f"WO {alert['work_order_id']}")).to_be_visible()
    shot(desk, "board-desktop")
    desk.goto(f"{stack.url}/ui/kpis")
    expect(desk.get_by_text("activations per day")).to_be_visible()
    shot(desk, "kpis-desktop")

    tech = browser.new_context(viewport=DESKTOP).new_page()
    login(tech, stack.url, "tomas")
    expect(tech).to_have_url(f"{stack.url}/ui/my")
    shot(tech, "technician-desktop")
    order_id = alert["work_order_id"]
    tech.get_by_role("link", name=f"WO {order_id}").click()
    state = tech.locator(".detail [data-state]")
    if stack.call("GET", f"/api/v1/work-orders/{order_id}", stack.admin)["assignee_id"] is None:
        tech.get_by_role("button", name="Claim").click()
        expect(state).to_have_attribute("data-state", "assigned")
    tech.get_by_role("button", name="Start work").click()
    expect(state).to_have_attribute("data-state", "in_progress")
    expect(tech.locator(".chart")).to_have_attribute("data-ready", "3", timeout=LIVE_TIMEOUT_MS)
    shot(tech, "work-order-desktop")
    tech.get_by_label("Failure code").fill("BRG-WEAR")
    tech.get_by_label("Cause").fill("drive-end bearing worn")
    tech.get_by_label("Notes").fill("Replaced DE bearing, realigned coupling.")
    tech.get_by_role("button", name="Complete work order").click()
    expect(state).to_have_attribute("data-state", "completed")
    order = stack.call("GET", f"/api/v1/work-orders/{order_id}", stack.admin)
    assert order["state"] == "completed"
    assert order["assignee_id"] == seeded["users"]["tomas"]
    assert order["failure_code"] == "BRG-WEAR"
    assert order["notes"][-1]["text"] == "Replaced DE bearing, realigned coupling."

    phone = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True).new_page()
    login(phone, stack.url, "dana")
    phone_pages = (
        ("/ui/fleet", "fleet-phone"),
        ("/ui/alerts", "alerts-phone"),
        (f"/ui/alerts/{alert['id']}", "alert-phone"),
        ("/ui/board", "board-phone"),
    )
    for path, name in phone_pages:
        phone.goto(f"{stack.url}{path}")
        if name == "alert-phone":
            expect(phone.locator(".chart")).to_have_attribute("data-ready", "3")
        small = phone.evaluate(_SMALL_TARGETS)
        assert small == [], f"{name}: tap targets under 40 px: {small}"
        shot(phone, name)
    tech_phone = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True).new_page()
    login(tech_phone, stack.url, "tomas")
    shot(tech_phone, "technician-phone")
    tech_phone.goto(f"{stack.url}/ui/work-orders/{order_id}")
    expect(tech_phone.locator(".chart")).to_have_attribute("data-ready", "3")
    shot(tech_phone, "work-order-phone")


def test_a_pm_plan_from_the_form_to_its_completed_checklist(browser: Browser, stack: Stack) -> None:
    """Facilities plans greasing for every pump and sees it due; the sweep makes the order; the
    technician cannot complete it before the required steps are ticked, then does."""
    now = datetime.now(UTC)
    seed(stack, now)
    SHOTS.mkdir(parents=True, exist_ok=True)
    desk = browser.new_context(viewport=DESKTOP).new_page()
    login(desk, stack.url, "dana")
    desk.goto(f"{stack.url}/ui/maintenance")
    desk.get_by_label("Title").fill("Grease the bearings")
    desk.get_by_label("Applies to").select_option(label="every pump (Plant A)")
    desk.get_by_label("Every", exact=True).fill("2")
    desk.get_by_label("Calendar unit").select_option("weeks")
    desk.get_by_label("Estimated labour (minutes)").fill("25")
    desk.locator("#pm-steps").fill(
        "! isolate and lock out\ngrease both bearings\nbearing temperature | °C | | 70"
    )
    desk.get_by_role("button", name="Create plan").click()
    expect(desk.locator(".flash")).to_contain_text("created")
    due = desk.locator("tr[data-plan]")
    expect(due.first).to_contain_text("Grease the bearings")
    expect(desk.locator(".calendar .due").first).to_contain_text("Grease the bearings")
    shot(desk, "maintenance-desktop")

    # Two weeks on (minus the 7-day lead) the background sweep makes the order.
    engine = make_engine(stack.database_url)
    sweep(make_sessionmaker(engine), PolicySettings(), now + timedelta(days=8))
    engine.dispose()
    orders = stack.call("GET", "/api/v1/work-orders", stack.admin, params={"limit": 500})["items"]
    order = next(o for o in orders if o["pm_plan_id"] is not None and "pump-01" in o["title"])

    tech = browser.new_context(viewport=DESKTOP).new_page()
    login(tech, stack.url, "tomas")
    tech.goto(f"{stack.url}/ui/work-orders/{order['id']}")
    state = tech.locator(".detail [data-state]")
    if order["assignee_id"] is None:
        tech.get_by_role("button", name="Claim").click()
        expect(state).to_have_attribute("data-state", "assigned")
    tech.get_by_role("button", name="Start work").click()
    expect(state).to_have_attribute("data-state", "in_progress")
    tech.get_by_role("button", name="Complete work order").click()
    expect(tech.locator(".flash")).to_contain_text("required checklist steps are not done")
    steps = tech.locator(".steps .step")
    steps.nth(0).get_by_role("checkbox").check()
    steps.nth(1).get_by_role("checkbox").check()
    steps.nth(2).get_by_role("spinbutton").fill("82")
    tech.get_by_role("button", name="Save checklist").click()
    expect(tech.locator(".flash")).to_have_text("Checklist saved.")
    expect(steps.nth(2)).to_contain_text("out of limits")
    shot(tech, "pm-order-desktop")
    tech.get_by_role("button", name="Complete work order").click()
    expect(state).to_have_attribute("data-state", "completed")
    done = stack.call("GET", f"/api/v1/work-orders/{order['id']}", stack.admin)
    assert done["state"] == "completed"
    assert [s["done"] for s in done["checklist"]] == [True, True, False]
    assert done["checklist"][2]["flagged"] is True


# Buttons, summary toggles and form fields smaller than 40 px on either side (links in text are
# exempt, as WCAG 2.5.8 allows for inline targets).
_SMALL_TARGETS = """
[...document.querySelectorAll('button, summary, input:not([type=hidden]), select, textarea')]
  .filter(e => e.offsetParent !== null)
  .map(e => [e.textContent.trim() || e.name, e.getBoundingClientRect()])
  .filter(([_, r]) => r.height < 40 && r.width > 0)
  .map(([n, r]) => `${n} ${Math.round(r.width)}x${Math.round(r.height)}`)
"""
