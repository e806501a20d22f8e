"""The JSON Schema of run specs, generated from the pydantic model and committed under ``schemas/``."""

from __future__ import annotations

import json

from gitops.spec.component import load_interface
from gitops.spec.model import DEFAULT_COMPONENT_VERSION, RunSpec

SCHEMA_ID = "https://github.com/finetune-gitops/finetune-gitops/schemas/run-spec.schema.json"


def run_spec_schema() -> dict[str, object]:
    schema = RunSpec.model_json_schema()
    schema["$id"] = SCHEMA_ID
    # Editors complete component params from the bundled interface.
    interface = load_interface(DEFAULT_COMPONENT_VERSION)
    if interface is not None:
        finetune = schema["$defs"]["FinetuneSpec"]["properties"]["params"]
        finetune["propertyNames"] = {"enum": sorted(interface.user_params)}
    return schema


def run_spec_schema_text() -> str:
    return json.dumps(run_spec_schema(), indent=2, sort_keys=True) + "\n"
