"""The console listens for exactly the event types the service publishes (its JS copy of the list)."""

from __future__ import annotations

import re
from importlib import resources
from typing import get_args

from archibald_actors.web.shapes import EventType


def test_the_consoles_event_list_is_the_services() -> None:
    source = resources.files("archibald_actors.web.console").joinpath("stream.js").read_text()
    block = re.search(r"export const EVENT_TYPES = \[(.*?)\];", source, re.DOTALL)
    assert block is not None, "stream.js no longer declares EVENT_TYPES"
    listened = re.findall(r'"([a-z_.]+)"', block.group(1))
    assert sorted(listened) == sorted(get_args(EventType))
    assert len(listened) == len(set(listened))
