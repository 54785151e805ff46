"""Languages and local times: every template string has a catalog entry, pages and problems
follow the viewer's language, and times are shown in the site's zone with their offset."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from api import i18n
from api.services.notify import texts
from api.web.session import COOKIE, csrf_token
from tests.api.helpers import Api

# SQLite only (catalogs, languages and time zones).
pytestmark = pytest.mark.sql_agnostic

API = Path(__file__).parents[2] / "api"
TEMPLATES = API / "web" / "templates"
PO = API / "locale" / "vi" / "LC_MESSAGES" / "messages.po"
# Template text that is not words for people: the product's name and CSS class blocks.
NOT_WORDS = {"equipmon", "· equipmon", "page wide", "login-page", "/api/v1/on-call/shifts"}
_JINJA_OR_TAG = re.compile(
    r"(<script.*?</script>|<!--.*?-->|<(?:\{\{.*?\}\}|\{%.*?%\}|[^>])*>|\{\{.*?\}\}|\{%.*?%\}"
    r"|\{#.*?#\})",
    re.S,
)


def catalog() -> dict[str, str]:
    """The Vietnamese catalog: msgid → translation (the first form of plurals)."""
    result = {}
    with PO.open("rb") as file:
        messages = list(read_po(file))
    for message in messages:
        if message.id:
            msgid = message.id if isinstance(message.id, str) else message.id[0]
            forms = message.string or ("",)
            string = forms if isinstance(forms, str) else forms[0]
            result[msgid] = string
    return result


def test_every_template_and_code_string_has_a_translation() -> None:
    """What `scripts/i18n extract` would find is in the catalog, translated."""
    method_map = [("**.py", "python"), ("web/templates/**.html", "jinja2")]
    options = {"web/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    keywords = {"_": None, "N_": None, "gettext": None, "ngettext": (1, 2)}
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(API), method_map, options, keywords
    ):
        found.add(message if isinstance(message, str) else message[0])
    translated = {msgid for msgid, string in catalog().items() if string}
    assert found - translated == set(), "run scripts/i18n all and translate the new words"


def test_templates_have_no_bare_text() -> None:
    """Words in templates go through `_()`: a bare one could never be translated."""
    bare = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        for index, part in enumerate(_JINJA_OR_TAG.split(path.read_text())):
            text = part.strip()
            if index % 2 == 0 and re.search(r"[A-Za-z]", text) and text not in NOT_WORDS:
                bare.append((path.relative_to(TEMPLATES).as_posix(), text[:60]))
            if index % 2 == 1 and part.startswith("<"):
                for attr in re.findall(r'(?:aria-label|title|placeholder|alt)="([^"{]+)"', part):
                    if re.search(r"[A-Za-z]", attr):
                        bare.append((path.relative_to(TEMPLATES).as_posix(), attr))
    assert bare == []


def test_compiled_catalog_is_current() -> None:
    """The .mo the app loads says what the .po says (`scripts/i18n compile` was run)."""
    with PO.with_suffix(".mo").open("rb") as file:
        messages = list(read_mo(file))
    compiled = {(m.id if isinstance(m.id, str) else m.id[0]): m.string for m in messages if m.id}
    for msgid, string in catalog().items():
        got = compiled.get(msgid)
        assert (got if isinstance(got, str) else (got or ("",))[0]) == string, msgid


def test_accept_language_and_problem_titles(api: Api) -> None:
    """Public pages and problem titles follow Accept-Language; `type` never changes."""
    vi = {"Accept-Language": "vi-VN,vi;q=0.9,en;q=0.5"}
    english = api.call("admin", "GET", "/api/v1/sites/999")
    viet = api.call("admin", "GET", "/api/v1/sites/999", headers=vi)
    assert english.json()["title"] == "Not found"
    assert viet.json()["title"] == "Không tìm thấy"
    assert english.json()["type"] == viet.json()["type"]
    page = api.client.get("/t/nothing-here", headers=vi)
    assert page.status_code == 404
    assert "Không tìm thấy" in page.text
    assert 'lang="vi"' in page.text
    assert page.headers["content-language"] == "vi"


def test_site_zone_and_offset(api: Api, site: dict[str, object]) -> None:
    """A site in Asia/Ho_Chi_Minh shows its requests' times at UTC+07:00."""
    api.ok("admin", "PATCH", f"/api/v1/sites/{site['id']}", json={"timezone": "Asia/Ho_Chi_Minh"})
    made = api.ok(
        "service", "POST", "/api/v1/requests", json={"site_id": site["id"], "description": "nóng"}
    )
    page = api.client.get(f"/t/{made['status_token']}", headers={"Accept-Language": "vi"})
    created = datetime.fromisoformat(made["created_at"]).astimezone(i18n.zone("Asia/Ho_Chi_Minh"))
    assert f"{created:%H:%M} {created.day}/{created.month}/" in page.text
    assert "(UTC+07:00)" in page.text
    assert "UTC+00:00" not in page.text
    moment = datetime(2026, 12, 7, 8, 4, tzinfo=UTC)
    assert i18n.local_time(moment, "Asia/Ho_Chi_Minh", "vi") == "15:04 7/12/26 (UTC+07:00)"
    assert i18n.local_time(moment, "Asia/Ho_Chi_Minh", "en") == "12/7/26, 3:04\u202fPM (UTC+07:00)"


def test_notification_texts_in_vietnamese() -> None:
    context = {"order_id": 7, "asset": "ahu-1", "site": "hotel", "priority": 2,
               "due": "15:00", "title": "AC"}  # fmt: skip
    message = texts.render("work_order.assigned", "vi", context)
    assert message.subject == "Phiếu công việc #7 được giao cho bạn: AC"
    assert "được giao cho bạn (ưu tiên 2, hạn 15:00)" in message.text
    assert texts.render("work_order.assigned", "en", context).subject.startswith("Work order #7")
    # Times in messages: the site's zone with the offset, in the recipient's format.
    due = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
    timed = texts.render(
        "work_order.assigned", "vi-VN", {**context, "due": due, "timezone": "Asia/Ho_Chi_Minh"}
    )
    assert "hạn 15:00 7/12/26 (UTC+07:00)" in timed.text


def test_a_user_chooses_their_language(api: Api) -> None:
    """The header's language button sets the viewer's own language; pages follow it."""
    token = api.tokens["facilities"]
    cookies = {COOKIE: token}
    before = httpx.get(f"{api.client.base_url}/ui/requests", cookies=cookies, timeout=30)
    assert ">Requests to triage<" in before.text
    chosen = httpx.post(
        f"{api.client.base_url}/ui/language",
        cookies=cookies,
        data={"csrf": csrf_token(token), "language": "vi"},
        headers={"Referer": f"{api.client.base_url}/ui/requests"},
        timeout=30,
    )
    assert chosen.status_code == 303
    assert chosen.headers["location"] == "/ui/requests"
    after = httpx.get(f"{api.client.base_url}/ui/requests", cookies=cookies, timeout=30)
    assert ">Yêu cầu sửa chữa cần xử lý<" in after.text
    assert 'lang="vi"' in after.text
    mine = api.ok("facilities", "GET", "/api/v1/users/me/notification-settings")
    assert mine["language"] == "vi"
