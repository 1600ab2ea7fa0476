"""The planning routes' part of the OpenAPI document (POST /schedule/preview and /schedule/suggest).

Built by :func:`archibald_actors.web.openapi.build_openapi`, which hands in its helpers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from archibald_actors.web.shapes import ref

__all__ = ["planning_paths"]

Schema = dict[str, Any]
Operation = Callable[..., Schema]
Content = Callable[[str, Schema], Schema]
Wrap = Callable[[Schema], Schema]


def _hours(default: float, most: float) -> Schema:
    return {
        "name": "hours",
        "in": "query",
        "required": False,
        "description": f"simulated hours from now; empty or absent means {default:g}",
        "allowEmptyValue": True,
        "schema": {
            "anyOf": [{"type": "number", "minimum": 1, "maximum": most}, {"const": ""}],
            "default": default,
        },
    }


def planning_paths(p: str, operation: Operation, json: Content, ok: Wrap) -> dict[str, Schema]:
    """POST /schedule/preview and POST /schedule/suggest under prefix ``p``.

    Args:
        p: the prefix.
        operation: builds an operation with its error answers (``openapi._operation``).
        json: a JSON response (``openapi._json``).
        ok: a schema wrapped in ``{"success": true, "data": ...}`` (``openapi._ok``).
    """
    a_list = {"type": "array", "items": ref("ScheduleUpdate"), "minItems": 1}
    changes = {"anyOf": [ref("ScheduleUpdate"), a_list]}
    return {
        f"{p}/schedule/preview": {
            "post": {
                **operation(
                    "Simulate the next hours under a retune (or a list of them); applies nothing",
                    "schedule",
                    {"200": json("the simulated runs, collisions and waits", ok(ref("PlanPreview")))},
                    errors=("400", "401", "413", "503", "504"),
                ),
                "parameters": [_hours(6, 48)],
                "requestBody": {"required": True, "content": {"application/json": {"schema": changes}}},
            }
        },
        f"{p}/schedule/suggest": {
            "post": {
                **operation(
                    "Suggest start delays that keep each interval and lower the waits (admin)",
                    "schedule",
                    {"200": json("delays, and waits before and after", ok(ref("StaggerSuggestion")))},
                    errors=("400", "401", "403", "413", "503", "504"),
                ),
                "parameters": [_hours(3, 12)],
                "requestBody": {
                    "required": False,
                    "content": {"application/json": {"schema": {"type": "object", "maxProperties": 0}}},
                },
            }
        },
    }
