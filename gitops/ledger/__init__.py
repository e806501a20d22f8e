"""The run ledger: every run's durable record, updated by compare-and-swap."""
