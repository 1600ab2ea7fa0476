"""``setup()`` as a new user meets it: its secret, its repr, and a second call with one service."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web

from archibald_actors import ManualClock, ServiceStateError, SyncService
from archibald_actors.web import SECRET_ENV, JWTAuthenticator, MissingSecretError, setup

from .conftest import PAUSED, SECRET, MakeApi, bearer


def paused_service() -> SyncService:
    return SyncService(schedule=PAUSED, clock=ManualClock())  # never started here


def test_the_missing_secret_error_suggests_what_setup_takes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SECRET_ENV, raising=False)
    with pytest.raises(MissingSecretError) as caught:
        setup(web.Application(), paused_service())
    message = str(caught.value)
    assert SECRET_ENV in message and "secret=" in message and "setup()" in message
    setup(web.Application(), paused_service(), secret=SECRET)  # what the message suggests works


def test_secret_and_authenticator_together_are_refused() -> None:
    with pytest.raises(ValueError, match="secret= or authenticator="):
        setup(web.Application(), paused_service(), secret=SECRET, authenticator=JWTAuthenticator(SECRET))


async def test_setup_with_a_secret_serves_tokens_signed_with_it(make_api: MakeApi) -> None:
    def host(service: SyncService) -> web.Application:
        app = web.Application()
        setup(app, service, secret=SECRET)
        return app

    api = await make_api(build=host)
    assert (await api.get("/schedule"))[0] == 200
    assert (await api.get("/schedule", headers=bearer(secret="x" * 40), role=None))[0] == 401


def test_the_repr_of_what_setup_returns_is_short() -> None:
    api = setup(web.Application(), paused_service(), prefix="/erp/sync", secret=SECRET)
    text = repr(api)
    assert text.startswith("SyncApi(prefix='/erp/sync'") and "orders" in text
    assert len(text) < 200 and "openapi" not in text and "paths" not in text


def test_a_second_setup_managing_one_service_fails_at_once() -> None:
    service = paused_service()
    setup(web.Application(), service, secret=SECRET)
    for app in (web.Application(), web.Application()):  # another app, or the same one: both refused
        with pytest.raises(ServiceStateError, match="manage_service=False"):
            setup(app, service, secret=SECRET)
    # A second mount that leaves the service to the first is fine.
    setup(web.Application(), service, secret=SECRET, prefix="/other", manage_service=False)


def test_a_setup_that_failed_leaves_the_service_free(monkeypatch: pytest.MonkeyPatch) -> None:
    service = paused_service()
    with pytest.raises(ValueError, match="prefix"):
        setup(web.Application(), service, prefix="api/", secret=SECRET)
    monkeypatch.delenv(SECRET_ENV, raising=False)
    with pytest.raises(MissingSecretError):
        setup(web.Application(), service)
    setup(web.Application(), service, secret=SECRET)  # the first that worked manages it


async def test_both_mounts_answer_once_the_app_started(make_api: MakeApi) -> None:
    mounted: list[Any] = []

    def host(service: SyncService) -> web.Application:
        app = web.Application()
        mounted.append(setup(app, service, secret=SECRET))
        mounted.append(
            setup(
                app,
                service,
                secret=SECRET,
                prefix="/v2",
                manage_service=False,
                healthz_path=None,
                metrics_path=None,
            )
        )
        return app

    api = await make_api(build=host)
    assert (await api.get("/status"))[0] == 200
    assert (await api.call("GET", "/v2/status"))[0] == 200
    assert [m.prefix for m in mounted] == ["/api/sync", "/v2"]
