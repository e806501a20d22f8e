"""``finetune.params`` against the real component interface (69 inputs of chat_completion_pipeline 0.0.82)."""

import pytest

from gitops.spec.component import SYSTEM_INPUTS, check_params, load_interface
from gitops.spec.validate import validate_text


def test_bundled_interface_has_all_69_inputs() -> None:
    interface = load_interface("0.0.82")
    assert interface is not None
    assert len(interface.inputs) == 69
    assert interface.inputs["deepspeed_stage"].enum == ("2", "3")
    assert interface.inputs["optim"].enum == ("adamw_torch", "adafactor")
    assert interface.inputs["num_train_epochs"].min == 1
    assert set(interface.outputs) == {"pytorch_model_folder", "mlflow_model_folder"}
    assert not interface.inputs["task_name"].optional


def test_yaml_booleans_and_integers_become_declared_strings() -> None:
    params, findings = check_params(
        {
            "apply_lora": True,
            "apply_deepspeed": False,
            "deepspeed_stage": 2,
            "precision": 16,
            "merge_lora_weights": "TRUE",
            "learning_rate": "5e-6",
            "lora_dropout": 0,
            "num_train_epochs": 3.0,
        },
        "0.0.82",
    )
    assert findings == []
    assert params == {
        "apply_lora": "true",
        "apply_deepspeed": "false",
        "deepspeed_stage": "2",
        "precision": "16",
        "merge_lora_weights": "true",
        "learning_rate": 5e-6,
        "lora_dropout": 0,
        "num_train_epochs": 3,
    }


@pytest.mark.parametrize(
    ("params", "path", "message", "hint"),
    [
        ({"learning_rat": 1e-5}, "finetune.params.learning_rat", "unknown parameter", "did you mean 'learning_rate'?"),
        ({"num_train_epoch": 2}, "finetune.params.num_train_epoch", "unknown parameter", "did you mean 'num_train_epochs'?"),
        (
            {"lr_scheduler_type": "cosin"},
            "finetune.params.lr_scheduler_type",
            "'cosin' is not allowed; allowed: linear, cosine",
            "did you mean 'cosine'?",
        ),
        ({"optim": "adamw_hf"}, "finetune.params.optim", "allowed: adamw_torch, adafactor", None),
        ({"deepspeed_stage": 1}, "finetune.params.deepspeed_stage", "'1' is not allowed; allowed: 2, 3", "use one of: 2, 3"),
        ({"apply_lora": "yes"}, "finetune.params.apply_lora", "allowed: true, false", None),
        ({"num_train_epochs": 0}, "finetune.params.num_train_epochs", "must be at least 1, got 0", None),
        ({"per_device_train_batch_size": "big"}, "finetune.params.per_device_train_batch_size", "must be an integer", None),
        ({"num_train_epochs": True}, "finetune.params.num_train_epochs", "must be an integer", None),
        ({"learning_rate": "fast"}, "finetune.params.learning_rate", "must be a number", None),
        ({"learning_rate": None}, "finetune.params.learning_rate", "has no value", None),
        (
            {"number_of_gpu_to_use_finetuning": 2},
            "finetune.params.number_of_gpu_to_use_finetuning",
            "is set by gitops",
            "set compute.instance_type (GPUs per node of the SKU) instead",
        ),
        ({"num_nodes_finetune": 2}, "finetune.params.num_nodes_finetune", "is set by gitops", "set compute.nodes instead"),
        ({"compute_finetune": "x"}, "finetune.params.compute_finetune", "is set by gitops", "set compute.cluster instead"),
        ({"train_file_path": "x"}, "finetune.params.train_file_path", "is set by gitops", "set data instead"),
        ({"mlflow_model_path": "x"}, "finetune.params.mlflow_model_path", "is set by gitops", "set model instead"),
        ({"deepspeed": "ds.json"}, "finetune.params.deepspeed", "is a uri_file input", None),
    ],
)
def test_param_errors(params: dict, path: str, message: str, hint: str | None) -> None:
    _, findings = check_params(params, "0.0.82")
    (finding,) = findings
    assert finding.path == path
    assert message in finding.message
    if hint is not None:
        assert finding.hint == hint


def test_every_system_input_is_declared() -> None:
    interface = load_interface("0.0.82")
    assert interface is not None
    assert set(SYSTEM_INPUTS) <= set(interface.inputs)


def test_unknown_component_version() -> None:
    _, findings = check_params({}, "9.9.9")
    assert findings[0].path == "finetune.component_version"
    assert "known: 0.0.82" in findings[0].message


def test_param_findings_carry_the_line(azure_spec_text) -> None:
    text = azure_spec_text().replace("lr_scheduler_type: cosine", "lr_scheduler_type: cosine, warmup_step: 3")
    (finding,) = validate_text(text, "s.yaml").findings
    assert finding.path == "finetune.params.warmup_step"
    assert finding.line == next(i for i, line in enumerate(text.splitlines(), 1) if "warmup_step" in line)
    assert finding.hint == "did you mean 'warmup_steps'?"
