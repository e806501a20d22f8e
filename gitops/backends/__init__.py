"""Backends: where fine-tunes run and models are served. One typed interface, an explicit registry."""
