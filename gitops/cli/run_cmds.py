"""Run lifecycle commands (filled in by the lifecycle)."""
