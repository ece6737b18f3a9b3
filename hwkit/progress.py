"""The one progress protocol: a long library call takes ``progress(event: dict)`` and never prints.

Every event is a JSON-ready dict with an ``"event"`` key naming what happened;
front ends turn events into a bar (the CLI), log lines, or a stream to a web
page without translating types. Counters are cumulative, so a consumer that
misses an event still shows the right position:

    {"event": "lines", "done": 120, "total": 3000}                    demo corpus written
    {"event": "files", "done": 640, "total": 3000, "lines": 590, "points": 412000}   prepare
    {"event": "start" | "step" | "valid" | "note" | "end", ...}       training (hwkit.train)

``total`` is None when it is not known yet (archives are streamed).
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[dict], None]


def ignore(event: dict) -> None:
    """The progress of a caller that did not ask for any."""
