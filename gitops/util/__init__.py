"""Small shared helpers (atomic files, time)."""
