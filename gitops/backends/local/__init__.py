"""The embedded local backend: real CPU fine-tunes, MLflow (SQLite) registry, loopback endpoints."""
