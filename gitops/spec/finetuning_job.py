"""The standalone fine-tuning job's hyperparameters (``finetune.kind: job | serverless``): their names and bounds,
per kind, as data, and the check of a spec's ``finetune.params`` against them.

The SDK takes hyperparameters free-form (a dict of strings), so nothing in the service refuses a typo before the job
runs: these tables do. The names are those the Azure ML samples send (``per_device_train_batch_size``,
``learning_rate``, ``num_train_epochs``); the serverless bounds are the portal's (batch size 1-32, epochs 1-10, the
learning rate, which the portal calls a multiplier, 0-10). The local backend's trainer reads the same names, so a
serverless run trains locally with the same parameters and bounds.
"""

from __future__ import annotations

from typing import Any

from gitops.spec.component import ComponentInput, _did_you_mean, check_declared
from gitops.spec.findings import Code, Finding, error

_JOB = {
    "num_train_epochs": ComponentInput("num_train_epochs", "integer", min=1, max=100),
    "per_device_train_batch_size": ComponentInput("per_device_train_batch_size", "integer", min=1, max=1024),
    "learning_rate": ComponentInput("learning_rate", "number", max=1.0),
}
_SERVERLESS = {
    "num_train_epochs": ComponentInput("num_train_epochs", "integer", min=1, max=10),
    "per_device_train_batch_size": ComponentInput("per_device_train_batch_size", "integer", min=1, max=32),
    "learning_rate": ComponentInput("learning_rate", "number", max=10.0),
}
HYPERPARAMETERS: dict[str, dict[str, ComponentInput]] = {"job": _JOB, "serverless": _SERVERLESS}


def check_hyperparameters(params: dict[str, Any], kind: str, base_path: str = "finetune.params") -> tuple[dict[str, Any], list[Finding]]:
    """``params`` checked against the fine-tuning job's hyperparameters of ``kind``: (normalised params, findings)."""
    declared = HYPERPARAMETERS[kind]

    def unknown(name: str, path: str) -> Finding:
        hint = _did_you_mean(name, list(declared)) or f"a {kind} fine-tuning job takes: {', '.join(declared)}"
        return error(path, f"is not a hyperparameter of the {kind} fine-tuning job", hint, code=Code.PARAM)

    return check_declared(params, declared, base_path, unknown)


def as_strings(params: dict[str, Any]) -> dict[str, str]:
    """The hyperparameters as the fine-tuning job takes them: every value a string."""
    return {k: (f"{v:g}" if isinstance(v, float) else str(v)) for k, v in params.items()}
