"""What a run costs: hourly prices (a committed, dated snapshot, or the Azure Retail Prices API), the estimate a
plan shows, and the budget caps of ``gitops.yaml``."""
