"""Forged, stale and misplaced credentials against the real HTTP server on a loopback port.

For every attack, on both writes (POST /schedule, POST /{type}/run) and on reads (GET /status,
GET /events): never a 2xx, never a 5xx, every 401 carries ``WWW-Authenticate: Bearer``, and
afterwards the schedule and the run history are what they were before any attack.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import http.client
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from archibald_actors.web import make_token

from .live import LiveServer

WRITE_BODY = json.dumps({"syncType": "orders", "intervalMinutes": 37}).encode()
#: (method, path, body) of each target; the event stream is only opened, never read.
TARGETS = {
    "POST schedule": ("POST", "/api/sync/schedule", WRITE_BODY),
    "POST run": ("POST", "/api/sync/orders/run", None),
    "GET status": ("GET", "/api/sync/status", None),
    "GET events": ("GET", "/api/sync/events", None),
}
MEGABYTE = 1 << 20


# --- building tokens by hand -------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def claims(role: str = "admin", **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "mallory", "userId": "mallory", "role": role, "iat": now, "exp": now + 3600, **extra}


def hs256(header: dict[str, Any], payload: dict[str, Any], key: bytes) -> str:
    """A JWS signed with HMAC-SHA256 under ``key``, whatever ``header`` says."""
    signing_input = f"{segment(header)}.{segment(payload)}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def unsigned(alg: str, *, trailing_dot: bool) -> str:
    token = f"{segment({'alg': alg, 'typ': 'JWT'})}.{segment(claims())}"
    return token + "." if trailing_dot else token


def tampered(secret: str) -> str:
    """A real agent token whose payload now says admin; the agent's signature is kept."""
    header, _, signature = make_token(secret, role="agent", sub="mallory").split(".")
    return f"{header}.{segment(claims('admin'))}.{signature}"


def forged_tokens(secret: str) -> dict[str, str]:
    """Every token that must be refused, by attack name."""
    key = secret.encode()
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    now = int(time.time())
    no_exp = {k: v for k, v in claims().items() if k != "exp"}
    real = make_token(secret, role="admin", sub="mallory")
    return {
        "alg none": unsigned("none", trailing_dot=False),
        "alg none, trailing dot": unsigned("none", trailing_dot=True),
        "alg None, trailing dot": unsigned("None", trailing_dot=True),
        "alg NONE, trailing dot": unsigned("NONE", trailing_dot=True),
        "signature stripped": real.rsplit(".", 1)[0] + ".",
        "HS256 with the wrong key": jwt.encode(claims(), "w" * 64, algorithm="HS256"),
        "RS256 with a fresh RSA key": jwt.encode(claims(), private, algorithm="RS256"),
        "HS256 keyed with the RSA public PEM": hs256({"alg": "HS256", "typ": "JWT"}, claims(), public_pem),
        "RS256 header, HMAC with the PEM": hs256({"alg": "RS256", "typ": "JWT"}, claims(), public_pem),
        "HS512 with the real secret": jwt.encode(claims(), key, algorithm="HS512"),
        "expired": hs256({"alg": "HS256"}, claims(exp=now - 60, iat=now - 3660), key),
        "not yet valid (nbf)": hs256({"alg": "HS256"}, claims(nbf=now + 3600), key),
        "no exp": hs256({"alg": "HS256"}, no_exp, key),
        "no user": hs256({"alg": "HS256"}, {"role": "admin", "exp": now + 3600}, key),
        "unexpected aud": hs256({"alg": "HS256"}, claims(aud="someone-else"), key),
        "agent payload changed to admin": tampered(secret),
        "garbage": "not.a.jwt",
        "five segments (JWE shape)": "a.b.c.d.e",
        "1 MB": "a" * MEGABYTE,
    }


FORGED_NAMES = list(forged_tokens("x" * 64))


# --- raw HTTP ------------------------------------------------------------------------------


@dataclass
class Answer:
    """What the server answered; ``status`` 0 if it closed the connection instead."""

    status: int
    challenge: str | None
    body: bytes


def send(
    live: LiveServer, method: str, path: str, headers: list[tuple[str, str]], body: bytes | None = None
) -> Answer:
    """One request with exactly ``headers`` (repeats allowed); an event stream is not read."""
    connection = http.client.HTTPConnection("127.0.0.1", live.port, timeout=10)
    try:
        connection.putrequest(method, path)
        for name, value in headers:
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Type", "application/json")
            connection.putheader("Content-Length", str(len(body)))
        with contextlib.suppress(ConnectionError):  # an oversized request may be refused mid-send
            connection.endheaders(body)
        try:
            response = connection.getresponse()
        except (ConnectionError, http.client.RemoteDisconnected):
            return Answer(0, None, b"")
        streaming = response.getheader("Content-Type", "").startswith("text/event-stream")
        return Answer(
            response.status, response.getheader("WWW-Authenticate"), b"" if streaming else response.read()
        )
    finally:
        connection.close()


def bearer(token: str) -> list[tuple[str, str]]:
    return [("Authorization", f"Bearer {token}")]


# --- fixtures ------------------------------------------------------------------------------


@dataclass
class Baseline:
    """The schedule and history before any attack, read with a real admin token."""

    schedule: Any
    history: Any


def read(live: LiveServer, path: str, token: str) -> Any:
    answer = send(live, "GET", path, bearer(token))
    assert answer.status == 200, answer
    return json.loads(answer.body)["data"]


@pytest.fixture(scope="module")
def tokens(secret: str) -> dict[str, str]:
    return forged_tokens(secret)


@pytest.fixture(scope="module")
def baseline(live: LiveServer, admin_token: str) -> Baseline:
    return Baseline(
        read(live, "/api/sync/schedule", admin_token), read(live, "/api/sync/history", admin_token)
    )


@pytest.fixture
def unchanged(live: LiveServer, admin_token: str, baseline: Baseline) -> Iterator[None]:
    """After the test: the schedule and the history are still those of before every attack."""
    yield
    assert read(live, "/api/sync/schedule", admin_token) == baseline.schedule
    assert read(live, "/api/sync/history", admin_token) == baseline.history
    assert live.service.status()["queue"] == []


def check_refused(answer: Answer, *, oversized: bool = False) -> None:
    assert not 200 <= answer.status < 300, answer
    assert answer.status < 500, answer
    if answer.status == 401:
        assert answer.challenge is not None and answer.challenge.startswith("Bearer"), answer
    if oversized:
        assert answer.status in (0, 400, 413, 431), answer  # refused by the HTTP parser
    else:
        assert answer.status == 401, answer


# --- the attacks ---------------------------------------------------------------------------


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("attack", FORGED_NAMES)
def test_forged_token_in_the_header(
    live: LiveServer, tokens: dict[str, str], attack: str, target: str
) -> None:
    method, path, body = TARGETS[target]
    answer = send(live, method, path, bearer(tokens[attack]), body)
    check_refused(answer, oversized=attack == "1 MB")


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("attack", FORGED_NAMES)
def test_forged_token_in_the_events_query(live: LiveServer, tokens: dict[str, str], attack: str) -> None:
    token = tokens[attack]
    answer = send(live, "GET", f"/api/sync/events?token={token}", [])
    check_refused(answer, oversized=attack == "1 MB")


def header_forms(admin: str) -> dict[str, list[tuple[str, str]]]:
    """A real admin token (or none) presented the wrong way."""
    return {
        "no credential": [],
        "Token scheme": [("Authorization", f"Token {admin}")],
        "Basic scheme": [("Authorization", "Basic " + base64.b64encode(f"admin:{admin}".encode()).decode())],
        "Bearer without a token": [("Authorization", "Bearer")],
        "Bearer and spaces": [("Authorization", "Bearer    ")],
        "token without a scheme": [("Authorization", admin)],
        "two tokens in one header": [("Authorization", f"Bearer {admin} {admin}")],
        "lowercase bearer, forged token": [("Authorization", "bearer not.a.jwt")],
        "two Bearer headers, both junk": [
            ("Authorization", "Bearer a.b.c"),
            ("Authorization", "Bearer x.y.z"),
        ],
        "two Bearer headers, junk first": [
            ("Authorization", "Bearer a.b.c"),
            ("Authorization", f"Bearer {admin}"),
        ],
        "token in a cookie": [("Cookie", f"token={admin}; access_token={admin}; jwt={admin}")],
        "token in X-Access-Token": [("X-Access-Token", admin), ("X-Auth-Token", admin)],
        "1 MB cookie": [("Cookie", "token=" + "a" * MEGABYTE)],
    }


FORM_NAMES = list(header_forms("x"))


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("form", FORM_NAMES)
def test_credential_in_the_wrong_form(live: LiveServer, admin_token: str, form: str, target: str) -> None:
    method, path, body = TARGETS[target]
    answer = send(live, method, path, header_forms(admin_token)[form], body)
    check_refused(answer, oversized=form.startswith("1 MB"))


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("target", [t for t in TARGETS if t != "GET events"])
def test_a_query_token_is_refused_outside_the_event_stream(
    live: LiveServer, admin_token: str, target: str
) -> None:
    method, path, body = TARGETS[target]
    check_refused(send(live, method, f"{path}?token={admin_token}", [], body))


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "BeArEr"])
def test_the_scheme_is_case_insensitive(live: LiveServer, agent_token: str, scheme: str) -> None:
    """RFC 6750 / RFC 9110 section 11.1: auth schemes are case-insensitive, so a real token is accepted."""
    answer = send(live, "GET", "/api/sync/status", [("Authorization", f"{scheme} {agent_token}")])
    assert answer.status == 200, answer


def test_two_authorization_headers_are_refused(live: LiveServer, admin_token: str) -> None:
    headers = [("Authorization", f"Bearer {admin_token}"), ("Authorization", "Bearer x.y.z")]
    answer = send(live, "GET", "/api/sync/status", headers)
    assert answer.status in (400, 401), answer


def test_a_huge_exp_is_not_a_server_error(live: LiveServer, secret: str) -> None:
    token = hs256({"alg": "HS256", "typ": "JWT"}, claims("agent", exp=10**400), secret.encode())
    answer = send(live, "GET", "/api/sync/status", bearer(token))
    assert answer.status < 500, answer


def test_a_real_token_still_works_after_the_attacks(
    live: LiveServer, admin_token: str, agent_token: str
) -> None:
    """The refusals above are not a server that refuses everything."""
    assert send(live, "GET", "/api/sync/status", bearer(agent_token)).status == 200
    forbidden = send(live, "POST", "/api/sync/schedule", bearer(agent_token), WRITE_BODY)
    assert forbidden.status == 403
