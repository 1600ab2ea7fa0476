"""Schemathesis against a running service: no 5xx, and every response as the OpenAPI document says.

The cases come from ``build_openapi()`` (schemathesis needs the document when pytest collects,
before any server runs); ``test_the_served_document_is_the_one_fuzzed`` pins that the running
service serves exactly that document. Requests go to a real standalone app on a loopback port,
authenticated with a real admin token. Bounded for CI: 50 examples per operation.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from schemathesis import GenerationMode, checks
from schemathesis.core.parameters import ParameterLocation

from archibald_actors.web import build_openapi

from .live import LiveServer

MAX_EXAMPLES = 50
DOCUMENT = build_openapi()
RUN = "POST /api/sync/{syncType}/run"
HISTORY = "GET /api/sync/history"

# The event stream never ends, so a request to it never returns: it is left out.
schema = schemathesis.openapi.from_dict(DOCUMENT).exclude(path_regex=r"/events$")
schema.config.generation.update(max_examples=MAX_EXAMPLES)



#: Checks left out per operation, and why.
EXCLUDED_CHECKS = {
    # An "invalid" query value that a query string cannot carry (null, an array) is sent
    # as nothing at all: the request is valid and its 200 is right, yet the check expects
    # a rejection. Every representable invalid value is covered by tests/web (history queries).
    HISTORY: [checks.negative_data_rejection],
}


def _drops_the_token(case: schemathesis.Case) -> bool:
    """A negative case whose invalid part is its headers, without an Authorization one: it
    stands for a request with no token, and adding the admin's would make it valid."""
    headers = case.meta.components.get(ParameterLocation.HEADER) if case.meta is not None else None
    negative = headers is not None and headers.mode == GenerationMode.NEGATIVE
    return negative and "Authorization" not in (case.headers or {})


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_fuzz(case: schemathesis.Case, live: LiveServer, admin_token: str) -> None:
    """Every default check: no 5xx, documented status codes, content types, headers and bodies."""
    case.call_and_validate(
        base_url=live.base,
        headers={} if _drops_the_token(case) else {"Authorization": f"Bearer {admin_token}"},
        timeout=10,
        excluded_checks=EXCLUDED_CHECKS.get(case.operation.label, []),
    )


def test_the_served_document_is_the_one_fuzzed(live: LiveServer) -> None:
    with urllib.request.urlopen(f"{live.base}/api/sync/openapi.json", timeout=10) as response:
        assert response.status == 200
        assert json.loads(response.read()) == DOCUMENT


def test_the_fuzz_left_nothing_logged_at_error(live: LiveServer) -> None:
    assert not live.errors, [record.getMessage() for record in live.errors]


# --- the document's known flaws, shown deterministically ---------------------------------


def _valid(label: str, name: str, value: str) -> bool:
    """Whether the document's schema of parameter ``name`` of ``label`` admits ``value``."""
    method, path = label.split(" ", 1)
    parameters = DOCUMENT["paths"][path][method.lower()]["parameters"]
    parameter = next(p for p in parameters if p["name"] == name)
    rebased = json.loads(json.dumps(parameter["schema"]).replace('"#/components/', '"urn:doc#/components/'))
    resource = Resource.from_contents(DOCUMENT, default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource("urn:doc", resource)
    return Draft202012Validator(rebased, registry=registry).is_valid(value)


def _status(live: LiveServer, method: str, path: str, token: str) -> int:
    request = urllib.request.Request(
        f"{live.base}{path}", method=method, headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        with error:
            return int(error.code)


def test_run_takes_exactly_the_sync_types_the_document_names(live: LiveServer, admin_token: str) -> None:
    assert not _valid(RUN, "syncType", "refunds")
    assert _status(live, "POST", "/api/sync/refunds/run", admin_token) == 400
    assert _valid(RUN, "syncType", "ddt")


@pytest.mark.parametrize("query", ["limit=", "syncType="])
def test_history_takes_the_empty_values_the_document_allows(
    live: LiveServer, admin_token: str, query: str
) -> None:
    name = query.removesuffix("=")
    assert _valid(HISTORY, name, "")  # empty means the default: all types, 100 runs
    assert _status(live, "GET", f"/api/sync/history?{query}", admin_token) == 200
