"""The auth matrix: who gets 401, who gets 403, and the pluggable authenticator."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from aiohttp import web

from archibald_actors import SyncService
from archibald_actors.web import (
    PRINCIPAL_KEY,
    AuthError,
    JWTAuthenticator,
    MissingSecretError,
    Principal,
    create_app,
    make_token,
    setup,
)

from .conftest import PAUSED, SECRET, Api, MakeApi, token


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(header: dict[str, Any], payload: dict[str, Any], key: bytes | None = SECRET.encode()) -> str:
    """A token with any header, HMAC-SHA256-signed with ``key`` (None: no signature)."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    signature = "" if key is None else _b64(hmac.new(key, signing_input.encode(), hashlib.sha256).digest())
    return f"{signing_input}.{signature}"


CLAIMS = {"sub": "mallory", "role": "admin", "exp": int(time.time()) + 3600}

BAD_AUTHORIZATION = {
    "missing": None,
    "basic scheme": "Basic YWRtaW46YWRtaW4=",
    "bearer without token": "Bearer",
    "not a jwt": "Bearer not-a-jwt",
    "garbage segments": "Bearer a.b.c",
    "two tokens": f"Bearer {token()} {token()}",
    "expired": f"Bearer {token(ttl=-10)}",
    "wrong key": f"Bearer {token(secret='another-secret-that-is-long-enough-0123456789')}",
    "alg none": f"Bearer {forged({'alg': 'none', 'typ': 'JWT'}, CLAIMS, key=None)}",
    "alg none signed": f"Bearer {forged({'alg': 'none', 'typ': 'JWT'}, CLAIMS)}",
    "RS256 header": f"Bearer {forged({'alg': 'RS256', 'typ': 'JWT'}, CLAIMS)}",
    "HS512 with the right key": f"Bearer {token(algorithm='HS512')}",
    "no exp": f"Bearer {forged({'alg': 'HS256', 'typ': 'JWT'}, {'sub': 'a', 'role': 'admin'})}",
    "no user": f"Bearer {token(sub=None)}",
    "tampered payload": f"Bearer {token('agent')[:-2]}AA",
}


@pytest.mark.parametrize("case", list(BAD_AUTHORIZATION))
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/sync/schedule"),
        ("POST", "/api/sync/schedule"),
        ("GET", "/api/sync/status"),
        ("POST", "/api/sync/orders/run"),
        ("GET", "/api/sync/history"),
        ("GET", "/api/sync/events"),
    ],
)
async def test_bad_credentials_are_401_with_a_bearer_challenge(
    api: Api, case: str, method: str, path: str
) -> None:
    value = BAD_AUTHORIZATION[case]
    headers = {} if value is None else {"Authorization": value}
    async with api.client.request(
        method, path, headers=headers, json={"syncType": "orders", "enabled": True}
    ) as r:
        assert r.status == 401, case
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
        body = await r.json()
        assert body["success"] is False
        assert body["error"].startswith("unauthorized")


async def test_a_reader_reads_and_runs_but_may_not_retune(api: Api) -> None:
    for role in ("agent", "viewer", None):
        headers = {"Authorization": f"Bearer {token(role)}"}
        async with api.client.get("/api/sync/schedule", headers=headers) as r:
            assert r.status == 200
        async with api.client.post("/api/sync/orders/run", headers=headers) as r:
            assert r.status == 202
        async with api.client.post(
            "/api/sync/schedule", headers=headers, json={"syncType": "orders", "enabled": False}
        ) as r:
            assert r.status == 403
            assert "admin" in (await r.json())["error"]
    schedule = await asyncio.wrap_future(api.service.schedule_future())
    assert schedule["orders"]["enabled"] is False  # PAUSED, untouched
    status, _ = await api.post("/schedule", role="admin", json={"syncType": "orders", "enabled": True})
    assert status == 200


async def test_the_existing_backends_claims_are_accepted(api: Api) -> None:
    legacy = token("admin", sub=None, userId=42, username="Mario Rossi")
    async with api.client.post(
        "/api/sync/schedule",
        headers={"Authorization": f"Bearer {legacy}"},
        json={"syncType": "ddt", "enabled": True},
    ) as r:
        assert r.status == 200


async def test_query_token_only_on_the_event_stream(api: Api) -> None:
    async with api.client.get("/api/sync/schedule", params={"token": token()}) as r:
        assert r.status == 401
    async with api.client.get("/api/sync/events", params={"token": token("agent")}) as r:
        assert r.status == 200
        assert r.content_type == "text/event-stream"
    async with api.client.get("/api/sync/events", params={"token": token(ttl=-5)}) as r:
        assert r.status == 401


async def test_public_routes_need_no_token(api: Api) -> None:
    for path in ("/api/sync/openapi.json", "/healthz", "/metrics"):
        async with api.client.get(path) as r:
            assert r.status == 200, path


def test_the_standalone_app_needs_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARCHIBALD_JWT_SECRET", raising=False)
    service = SyncService(schedule=PAUSED)
    with pytest.raises(MissingSecretError, match="ARCHIBALD_JWT_SECRET"):
        create_app(service)
    with pytest.raises(MissingSecretError, match="32 bytes"):
        create_app(service, secret="short")
    monkeypatch.setenv("ARCHIBALD_JWT_SECRET", "too-short")
    with pytest.raises(MissingSecretError, match="too short"):
        create_app(service)
    monkeypatch.setenv("ARCHIBALD_JWT_SECRET", SECRET)
    assert isinstance(create_app(service), web.Application)
    assert isinstance(MissingSecretError("x"), ValueError)


def test_make_token_round_trips() -> None:
    authenticator = JWTAuthenticator(SECRET)
    principal = authenticator.decode(make_token(SECRET, role="admin", sub="ops", username="Ops"))
    assert (principal.user_id, principal.username, principal.role) == ("ops", "Ops", "admin")
    assert principal.expires_at is not None
    assert abs(principal.expires_at - time.time() - 8 * 3600) < 60
    assert principal.is_admin
    claims = json.loads(
        base64.urlsafe_b64decode(make_token(SECRET, role="agent", sub="a", ttl=60).split(".")[1] + "==")
    )
    assert claims["exp"] - claims["iat"] == 60
    assert claims["userId"] == "a"
    with pytest.raises(MissingSecretError):
        make_token("short", role="admin", sub="x")
    with pytest.raises(ValueError, match="ttl"):
        make_token(SECRET, role="admin", sub="x", ttl=0)
    with pytest.raises(AuthError, match="expired"):
        authenticator.decode(token(ttl=-1))
    with pytest.raises(MissingSecretError, match="HS512 needs 64"):
        JWTAuthenticator("k" * 40, algorithm="HS512")
    with pytest.raises(ValueError, match="algorithm"):
        JWTAuthenticator(SECRET, algorithm="RS256")


class HeaderAuthenticator:
    """A host's own scheme: a trusted proxy puts the user in headers."""

    async def authenticate(self, request: web.Request) -> Principal:
        user = request.headers.get("X-User")
        if not user:
            raise AuthError("no X-User header")
        return Principal(user, user, request.headers.get("X-Role", "agent"))


async def test_a_host_can_plug_in_its_own_authenticator(make_api: MakeApi) -> None:
    seen: list[Principal] = []

    def build(service: SyncService) -> web.Application:
        app = web.Application()
        api = setup(app, service, authenticator=HeaderAuthenticator())

        @web.middleware
        async def spy(request: web.Request, handler: Any) -> web.StreamResponse:
            response = await handler(request)
            if PRINCIPAL_KEY in request:
                seen.append(request[PRINCIPAL_KEY])
            return response

        app.middlewares.append(spy)
        assert api is not app
        return app

    api = await make_api(build=build)
    async with api.client.get("/api/sync/status") as r:
        assert r.status == 401
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
    async with api.client.get("/api/sync/status", headers={"X-User": "u1"}) as r:
        assert r.status == 200
    async with api.client.post(
        "/api/sync/schedule", headers={"X-User": "u1"}, json={"syncType": "orders", "enabled": True}
    ) as r:
        assert r.status == 403
    async with api.client.post(
        "/api/sync/schedule",
        headers={"X-User": "boss", "X-Role": "admin"},
        json={"syncType": "orders", "enabled": True},
    ) as r:
        assert r.status == 200
    async with api.client.get("/api/sync/status", headers={"Authorization": f"Bearer {token()}"}) as r:
        assert r.status == 401  # JWTs mean nothing to this host
    assert [p.user_id for p in seen] == ["u1", "u1", "boss"]


def test_an_audience_is_checked_when_configured() -> None:
    assert JWTAuthenticator(SECRET, audience="erp").decode(token(aud="erp")).user_id == "alice"
    for bad in (token(aud="other"), token()):
        with pytest.raises(AuthError):
            JWTAuthenticator(SECRET, audience="erp").decode(bad)
    with pytest.raises(AuthError):
        JWTAuthenticator(SECRET).decode(token(aud="erp"))  # an audience nobody configured is refused
