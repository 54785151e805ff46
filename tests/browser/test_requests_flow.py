"""A request from an asset's QR label, without an account, to a completed work order.

In headless Chromium against the real API: the requester files from the label's page, a
facilities user accepts it into a work order, a technician completes it, and the requester's
status page shows each step. The same story in Vietnamese must leave no English word of the
catalog on any page it visits. Screenshots go where the dashboard test puts its own.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zxingcpp
from babel.messages.pofile import read_po
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from api.main import create_app
from tests.api.helpers import make_settings, serve
from tests.browser.seed import PASSWORD, Stack
from tests.browser.test_dashboard import DESKTOP, PHONE, SHOTS

PO = Path(__file__).resolve().parents[2] / "api" / "locale" / "vi" / "LC_MESSAGES" / "messages.po"
TZ = "Asia/Ho_Chi_Minh"
# Per language: what the people type, and the words of the buttons they press.
STORY: dict[str, dict[str, str]] = {
    "en": {
        "asset": "Lobby air handler", "site": "Riverside Hotel",
        "text": "The lobby air conditioning blows warm air", "where": "Lobby, by reception",
        "user": "Username", "password": "Password", "login": "Log in", "send": "Send request",
        "accept": "Accept: open a work order", "technician": "Technician",
        "start": "Start work", "complete": "Complete work order", "requests": "Requests",
    },
    "vi": {
        "asset": "Máy xử lý không khí sảnh", "site": "Khách sạn Bờ Sông",
        "text": "Điều hòa sảnh thổi ra hơi nóng", "where": "Sảnh, cạnh quầy lễ tân",
        "user": "Tên đăng nhập", "password": "Mật khẩu", "login": "Đăng nhập",
        "send": "Gửi yêu cầu", "accept": "Chấp nhận: lập phiếu công việc",
        "technician": "Kỹ thuật viên", "start": "Bắt đầu làm",
        "complete": "Hoàn thành phiếu công việc", "requests": "Yêu cầu sửa chữa",
    },
}  # fmt: skip

pytestmark = pytest.mark.browser


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """The real API on a free port with SQLite (no readings store: charts say so)."""
    settings = make_settings(f"sqlite:///{tmp_path / 'requests.db'}")
    assert settings.admin_token
    assert settings.service_token
    with serve(create_app(settings)) as url:
        harness = Stack(
            url, settings.admin_token.get_secret_value(), settings.service_token.get_secret_value()
        )
        yield harness
        harness.client.close()


def english_words() -> list[re.Pattern[str]]:
    """The catalog's English texts that have a Vietnamese translation of their own."""
    with PO.open("rb") as file:
        messages = list(read_po(file))
    found = []
    for message in messages:
        ids = [message.id] if isinstance(message.id, str) else list(message.id or ())
        forms = message.string or ("",)
        string = forms if isinstance(forms, str) else forms[0]
        for msgid in ids:
            # Placeholders split a text: each piece of 4+ letters must not be on the page.
            for raw in re.split(r"%\(\w+\)[sd]|\{[^}]*\}|[()\[\]:;·—,.?!]", msgid):
                piece = raw.strip()
                if len(piece) >= 4 and re.search(r"[a-z]{3}", piece) and piece not in string:
                    found.append(re.compile(rf"(?<![\w-]){re.escape(piece)}(?![\w-])"))
    return found


def no_english(page: Page, words: list[re.Pattern[str]], where: str) -> None:
    text = page.evaluate("document.body.innerText + ' ' + document.title")
    left = sorted({w.pattern for w in words if w.search(text)})
    assert left == [], f"{where}: English left on the page: {left}"


def seed(stack: Stack, lang: str) -> dict[str, Any]:
    """A hotel in Ho Chi Minh City with one air handler, a facilities user and a technician."""
    story = STORY[lang]
    site = stack.call(
        "POST",
        "/api/v1/sites",
        stack.admin,
        json={"code": f"hotel-{lang}", "name": story["site"], "timezone": TZ},
    )
    asset = stack.call("POST", "/api/v1/assets", stack.admin, json={
        "site_id": site["id"], "code": "ahu-lobby", "name": story["asset"],
        "asset_type": "ahu", "criticality": "medium", "location": story["where"],
    })  # fmt: skip
    users = {}
    for name, role, display in (("linh", "facilities", "Linh"), ("minh", "technician", "Minh")):
        user = stack.call("POST", "/api/v1/users", stack.admin, json={
            "username": name, "role": role, "password": PASSWORD, "display_name": display,
        })  # fmt: skip
        stack.call("PUT", f"/api/v1/users/{user['id']}/notification-settings", stack.admin,
                   json={"language": lang, "timezone": TZ})  # fmt: skip
        users[name] = user
    label = stack.client.get(f"/api/v1/assets/{asset['id']}/qr", headers=stack.admin)
    (code,) = zxingcpp.read_barcodes(Image.open(io.BytesIO(label.content)).convert("L"))
    path = "/q/" + code.text.split("/q/", 1)[1]
    return {"asset": asset, "users": users, "label_path": path}


def login(page: Page, url: str, username: str, story: dict[str, str]) -> None:
    page.goto(f"{url}/ui/login")
    page.get_by_label(story["user"]).fill(username)
    page.get_by_label(story["password"]).fill(PASSWORD)
    page.get_by_role("button", name=story["login"]).click()
    page.wait_for_load_state()


@pytest.mark.parametrize("lang", ["en", "vi"])
def test_request_from_label_to_done(browser: Browser, stack: Stack, lang: str) -> None:
    story = STORY[lang]
    seeded = seed(stack, lang)
    words = english_words() if lang == "vi" else []
    locale = "vi-VN" if lang == "vi" else "en-GB"
    SHOTS.mkdir(parents=True, exist_ok=True)

    def visited(page: Page, name: str) -> None:
        if lang == "vi":
            no_english(page, words, name)
        page.screenshot(path=str(SHOTS / f"request-{name}-{lang}.png"), full_page=True)

    # The requester: a phone, no account, the label's link.
    phone = browser.new_context(viewport=PHONE, locale=locale).new_page()
    phone.goto(stack.url + seeded["label_path"])
    expect(phone.get_by_test_id("asset")).to_contain_text(story["asset"])
    visited(phone, "form")
    phone.locator("#description").fill(story["text"])
    phone.locator("input[name=urgency][value=urgent]").check()
    phone.locator("#name").fill("Lan")
    phone.get_by_role("button", name=story["send"]).click()
    expect(phone).to_have_url(re.compile(r"/t/[\w-]+\?new=1$"))
    status_url = phone.url.split("?")[0]
    expect(phone.locator('[data-step="received"]')).to_have_class("done")
    expect(phone.locator('[data-step="accepted"]')).to_have_class("todo")
    expect(phone.locator(".request-status")).to_contain_text("(UTC+07:00)")
    visited(phone, "status-received")

    # Facilities: the triage list, accept into a work order for Minh.
    desk = browser.new_context(viewport=DESKTOP, locale=locale).new_page()
    login(desk, stack.url, "linh", story)
    desk.get_by_role("link", name=story["requests"]).click()
    card = desk.locator("[data-request]").first
    expect(card).to_contain_text(story["text"])
    expect(card).to_contain_text("(UTC+07:00)")
    visited(desk, "triage")
    card.get_by_label(story["technician"]).select_option(label="Minh")
    card.get_by_role("button", name=story["accept"]).click()
    expect(desk.locator(".flash")).to_be_visible()
    visited(desk, "triaged")

    phone.goto(status_url)
    expect(phone.locator('[data-step="accepted"]')).to_have_class("done")
    visited(phone, "status-accepted")

    # The technician: their work, the order, start and complete.
    tech = browser.new_context(viewport=DESKTOP, locale=locale).new_page()
    login(tech, stack.url, "minh", story)
    expect(tech).to_have_url(f"{stack.url}/ui/my")
    visited(tech, "technician")
    tech.locator(".wo-title").first.click()
    tech.get_by_role("button", name=story["start"]).click()
    expect(tech.locator(".detail [data-state]")).to_have_attribute("data-state", "in_progress")
    phone.goto(status_url)
    expect(phone.locator('[data-step="in_progress"]')).to_have_class("done")
    tech.get_by_role("button", name=story["complete"]).click()
    expect(tech.locator(".detail [data-state]")).to_have_attribute("data-state", "completed")
    visited(tech, "order-completed")

    phone.goto(status_url)
    expect(phone.locator('[data-step="done"]')).to_have_class("done")
    expect(phone.get_by_test_id("current")).to_contain_text("Đã xong" if lang == "vi" else "Done")
    visited(phone, "status-done")

    # Staff who scan the label while logged in land on the asset's page.
    desk.goto(stack.url + seeded["label_path"])
    expect(desk).to_have_url(f"{stack.url}/ui/assets/{seeded['asset']['id']}")
    expect(desk.locator("h1")).to_contain_text(story["asset"])
    visited(desk, "asset")
