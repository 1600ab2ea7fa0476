"""Finding the line of a key in TOML text, for the config's error messages.

``tomllib`` keeps no positions; these read the text line by line (so they also work on
text ``tomllib`` refuses) and are good enough for the keys a config file holds.
"""

from __future__ import annotations

import re

__all__ = ["find_line", "key_at_line"]

_BARE_OR_QUOTED = r"(?:[A-Za-z0-9_-]+|\"(?:[^\"\\]|\\.)*\"|'[^']*')"
_DOTTED = rf"{_BARE_OR_QUOTED}(?:\s*\.\s*{_BARE_OR_QUOTED})*"
_HEADER = re.compile(rf"^\s*\[\[?\s*(?P<key>{_DOTTED})\s*\]\]?")
_ASSIGN = re.compile(rf"^\s*(?P<key>{_DOTTED})\s*=")
_PART = re.compile(_BARE_OR_QUOTED)


def _split_key(dotted: str) -> tuple[str, ...]:
    parts = []
    for match in _PART.finditer(dotted):
        part = match[0]
        parts.append(part[1:-1] if part[:1] in "\"'" else part)
    return tuple(parts)


def key_at_line(text: str, line: int) -> tuple[str, ...]:
    """The dotted key defined on 1-based ``line`` of TOML ``text`` (or its table), () if none.

    Read line by line, so it works on text ``tomllib`` refuses.
    """
    table: tuple[str, ...] = ()
    for number, content in enumerate(text.splitlines(), 1):
        if header := _HEADER.match(content):
            table = _split_key(header["key"])
            if number == line:
                return table
        elif number == line:
            assign = _ASSIGN.match(content)
            return (*table, *_split_key(assign["key"])) if assign else ()
        if number >= line:
            break
    return ()


def find_line(text: str, keys: tuple[str, ...]) -> int | None:
    """The 1-based line where ``keys`` (a dotted path) is defined in TOML ``text``.

    The line of the key itself, or of its table header; failing both (an inline table),
    the line of the nearest enclosing key. None if nothing matches.
    """
    table: tuple[str, ...] = ()
    best: tuple[int, int] | None = None  # (length of the matched prefix, line)
    open_string: str | None = None
    for number, line in enumerate(text.splitlines(), 1):
        if open_string is not None:  # inside a multi-line string: no keys here
            if open_string in line:
                open_string = None
            continue
        if header := _HEADER.match(line):
            table = path = _split_key(header["key"])
        elif assign := _ASSIGN.match(line):
            path = (*table, *_split_key(assign["key"]))
            rest = line[assign.end() :]
            for quote in ('"""', "'''"):
                if rest.count(quote) % 2 == 1:
                    open_string = quote
        else:
            continue
        if path[: len(keys)] == keys:
            return number
        if keys[: len(path)] == path and (best is None or len(path) > best[0]):
            best = (len(path), number)
    return None if best is None else best[1]
