"""Run reports: training and evaluation metrics, the smoke test and the serving facts of one run."""
