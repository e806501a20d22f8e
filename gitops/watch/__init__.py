"""Watching the world and the endpoints between pull requests: retirements, newer versions and quota (the online
checks again, over every spec), and drift between what the ledger declares and what the endpoints run.
``scan`` finds, ``fix`` restores what it may, ``findings`` renders for a terminal, JSON and a GitHub issue."""
