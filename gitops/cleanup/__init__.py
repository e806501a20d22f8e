"""Scheduled teardown of idle and stale endpoints that the repo manages, safe by construction."""
