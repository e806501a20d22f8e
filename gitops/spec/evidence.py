"""What a run's gate will decide on, said before the run: the evidence it waives (by name under
``deploy.gate.waive``, or by ``enabled: false`` and ``conversations: 0``), and the evidence it will not have (a test
split the lifecycle cannot read, an eval loss the trainer will not log). A gate passes only on evidence, so a run
without either holds at 0% for a person: better said at review than found after a 20-minute deployment.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gitops.spec.capabilities import BackendKind, is_remote_data, kind_of
from gitops.spec.findings import Code, Finding, warning
from gitops.spec.model import RunSpec
from gitops.spec.policy import GateRules

LABELS = {"training_metrics": "training metrics", "held_out": "held-out conversations"}
WAIVE_HINT = "to let the gate decide, give it the evidence instead: a test split it can read, and eval logging"


def held_out_missing(spec: RunSpec, kind: BackendKind) -> tuple[str, str] | None:
    """(field path, why) when the online evaluation will have no held-out conversations to ask; None when it will."""
    if spec.data.dataset is not None:
        return None  # the test split is prepared where the gate reads it
    test = spec.data.test_path
    if test is None:
        return "data.test_path", "the spec names no test split (data.train_path without data.test_path)"
    if test.strip().lower().startswith(kind.held_out_prefixes):
        return None
    if kind.held_out_local_files and not is_remote_data(test):
        return None
    return "data.test_path", f"the gate cannot read {test!r}: {kind.held_out_elsewhere}"


def eval_loss_missing(spec: RunSpec, params: Mapping[str, Any], kind: BackendKind) -> tuple[str, str] | None:
    """(field path, why) when the training will log no eval loss for the gate to compare; None when it will."""
    if spec.data.dataset is None and spec.data.test_path is None:
        return "data.test_path", "the training has no test split to compute an eval loss on"
    if kind.eval_loss_follows_strategy and str(params.get("evaluation_strategy", "")) == "disable":
        return "finetune.params.evaluation_strategy", "evaluation_strategy: disable logs no eval loss"
    return None


def evidence_findings(spec: RunSpec, params: Mapping[str, Any], rules: GateRules) -> list[Finding]:
    """Warnings on the lines that waive the gate's evidence, and on those that leave it without evidence it needs."""
    gate, waived = spec.deploy.gate, rules.waive
    if not rules.enabled:
        path = "deploy.gate.enabled" if gate.enabled is not None else "deploy.gate"
        message = "the gate is off: every candidate goes live with no evidence (a waiver of training_metrics and held_out)"
        return [warning(path, message, WAIVE_HINT, source="policy", code=Code.GATE_WAIVER)]
    out: list[Finding] = []
    if gate.waive:
        named = ", ".join(gate.waive)
        out.append(
            warning(
                "deploy.gate.waive",
                f"the gate waives {named}: the candidate is promoted without that evidence",
                WAIVE_HINT,
                code=Code.GATE_WAIVER,
            )
        )
    if not rules.conversations and "held_out" not in (gate.waive or []):
        path = "deploy.gate.conversations" if gate.conversations is not None else "deploy.gate"
        out.append(
            warning(
                path,
                "conversations: 0 waives the held-out evaluation: no answer of the candidate is compared",
                WAIVE_HINT,
                code=Code.GATE_WAIVER,
            )
        )
    kind = kind_of(spec.backend)
    for evidence, missing in (("training_metrics", eval_loss_missing(spec, params, kind)), ("held_out", held_out_missing(spec, kind))):
        if missing is None or evidence in waived:
            continue
        path, why = missing
        out.append(
            warning(
                path,
                f"the gate will have no {LABELS[evidence]}: {why}; every candidate will be held for a person",
                f"fix that, or waive it on purpose: deploy.gate.waive: [{evidence}]",
                code=Code.GATE_WAIVER,
            )
        )
    return out
