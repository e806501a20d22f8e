"""Times as people read them: durations as ``30s``, ``1m15s``, ``45m``, ``2h05m``, ``24h``, ``3d4h`` (never ``0 min``
for a hold of 30 seconds, nor ``1440m`` for a day; the spec's own units read these back), and the moments a record
keeps as epoch seconds written as ISO 8601 UTC wherever JSON is printed for people (status, report)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

# The keys under which records, verdicts and reports keep a moment as epoch seconds.
TIME_KEYS = frozenset(
    {"at", "updated_at", "claimed_until", "entered_at", "not_before", "deadline_at", "started_at", "submitted_at", "stopped_at"}
)


def iso_times(value: Any) -> Any:
    """Epoch seconds under ``TIME_KEYS`` -> ISO 8601 UTC text, recursively through dicts and lists."""
    if isinstance(value, dict):
        return {
            k: (
                datetime.fromtimestamp(v, UTC).isoformat(timespec="seconds")
                if k in TIME_KEYS and isinstance(v, int | float) and not isinstance(v, bool)
                else iso_times(v)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [iso_times(v) for v in value]
    return value


def human(seconds: float) -> str:
    """``30`` -> ``30s``; ``75`` -> ``1m15s``; ``3700`` -> ``1h01m``; ``86400`` -> ``24h``; ``273600`` -> ``3d4h``."""
    s = int(max(0.0, seconds))
    if s >= 3 * 86400:
        days, hours = divmod(s // 3600, 24)
        return f"{days}d{hours}h" if hours else f"{days}d"
    if s >= 3600:
        hours, minutes = divmod(s // 60, 60)
        return f"{hours}h{minutes:02d}m" if minutes else f"{hours}h"
    if s >= 60:
        minutes, rest = divmod(s, 60)
        return f"{minutes}m{rest:02d}s" if rest else f"{minutes}m"
    return f"{s}s"
