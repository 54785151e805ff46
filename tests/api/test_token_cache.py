"""Token → principal cache (api/tokencache.py): a change through the app applies at once;
the cache itself keeps nothing past its TTL or the token's expiry, and a lookup that raced
a revocation is not remembered."""

from __future__ import annotations

from datetime import timedelta

from api.models import utcnow
from api.security import Principal
from api.tokencache import TokenCache
from tests.api.helpers import Api

ME = "/api/v1/users/me"


def test_a_revoked_token_is_refused_on_its_next_request(api: Api) -> None:
    user_id = api.user_ids["facilities"]
    issued = api.ok("admin", "POST", "/api/v1/tokens", json={"name": "i", "user_id": user_id})
    headers = {"Authorization": f"Bearer {issued['token']}"}
    assert api.client.get(ME, headers=headers).status_code == 200  # now cached
    assert api.client.get(ME, headers=headers).status_code == 200
    api.ok("admin", "DELETE", f"/api/v1/tokens/{issued['id']}")
    assert api.client.get(ME, headers=headers).status_code == 401


def test_deactivating_or_changing_a_role_applies_on_the_next_request(api: Api) -> None:
    user_id = api.user_ids["technician"]
    assert api.ok("technician", "GET", ME)["role"] == "technician"
    api.ok("admin", "PATCH", f"/api/v1/users/{user_id}", json={"role": "facilities"})
    assert api.ok("technician", "GET", ME)["role"] == "facilities"
    api.ok("admin", "PATCH", f"/api/v1/users/{user_id}", json={"active": False})
    assert api.call("technician", "GET", ME).status_code == 401


def test_entries_end_with_their_ttl_and_with_the_tokens_expiry() -> None:
    now = [100.0]
    cache = TokenCache(2.0, clock=lambda: now[0])
    who = Principal("admin", "user:a", 1)
    cache.put("a", who, None, cache.generation)
    cache.put("b", who, utcnow() + timedelta(milliseconds=1), cache.generation)
    assert cache.get("a", utcnow()) == who
    assert cache.get("b", utcnow() + timedelta(seconds=1)) is None  # the token expired
    now[0] += 2.0
    assert cache.get("a", utcnow()) is None


def test_a_lookup_that_raced_a_revocation_is_not_remembered() -> None:
    cache = TokenCache(60.0)
    generation = cache.generation  # a request starts looking the token up …
    cache.clear()  # … a revocation commits meanwhile …
    cache.put("a", Principal("admin", "user:a", 1), None, generation)  # … it answers late
    assert cache.get("a", utcnow()) is None


def test_a_zero_ttl_keeps_nothing() -> None:
    cache = TokenCache(0)
    cache.put("a", Principal("admin", "user:a", 1), None, cache.generation)
    assert cache.get("a", utcnow()) is None
