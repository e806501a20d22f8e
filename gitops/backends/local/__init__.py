"""The embedded local backend: real CPU fine-tunes, MLflow (SQLite) registry, loopback endpoints.

What the command line asks of this backend beyond ``Backend`` is here, by name (``gitops local bootstrap``); its
modules are this package's own (an import-linter contract keeps the CLI out of them).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gitops.backends.base import RegisteredModel


def bootstrap_model(workspace_dir: Path, force: bool = False) -> RegisteredModel:
    """Build the tiny Phi-3 foundation model offline and register it in the workspace's MLflow as ``tiny-phi3``."""
    from gitops.backends.local.models import bootstrap
    from gitops.backends.local.workspace import LocalWorkspace

    return bootstrap(LocalWorkspace.at(workspace_dir), force=force)
