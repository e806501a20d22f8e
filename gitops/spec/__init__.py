"""Run specs: the YAML documents users commit under ``runs/``, and their two-pass validation."""
