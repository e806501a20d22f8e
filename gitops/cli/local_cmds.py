"""Local backend commands (filled in by the local backend)."""
