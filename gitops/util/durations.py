"""Durations as people read them: ``30s``, ``1m15s``, ``45m``, ``2h05m``, ``24h``, ``3d4h``; never ``0 min`` for a
hold of 30 seconds, nor ``1440m`` for a day. The spec's own units (``parse_duration``) read these back."""

from __future__ import annotations


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
