"""The content digest of a trained model: one sha256 over its files (each file's path inside the model and its
bytes, in path order). It is computed where the model is produced and kept as a model tag, so that every
environment the model is promoted to can be held to the same bytes without the controller downloading a model.

The packaging's own metadata is left out (MLflow's ``MLmodel`` and environment files name the run and the time
they were written, which a copy into a registry may rewrite); the weights, the tokenizer and the configs are the
content. Imports nothing of ``gitops``: it runs on compute.

On Azure ML it is the pipeline's ``model_digest`` step: ``python model_digest.py --model DIR --output FILE`` writes
``{"content_digest": "sha256:..."}`` to a datastore path the job names after itself, where the controller reads it
(a few bytes) and tags the registered model with it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

PACKAGING = frozenset(
    {
        "MLmodel",
        "conda.yaml",
        "python_env.yaml",
        "requirements.txt",
        "registered_model_meta",
        "input_example.json",
        "serving_input_example.json",
    }
)
CHUNK = 1 << 20


def content_digest(root: str | Path) -> str:
    """``sha256:<hex>`` of the model under ``root``; ``ValueError`` when there is no content file at all (a digest
    of nothing would prove nothing)."""
    base = Path(root)
    files = sorted((p for p in base.rglob("*") if p.is_file() and p.name not in PACKAGING), key=lambda p: p.relative_to(base).as_posix())
    if not files:
        raise ValueError(f"no model files under {base}")
    h = hashlib.sha256()
    for path in files:
        rel = path.relative_to(base).as_posix().encode()
        h.update(len(rel).to_bytes(4, "big") + rel + path.stat().st_size.to_bytes(8, "big"))
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(CHUNK), b""):
                h.update(chunk)
    return f"sha256:{h.hexdigest()}"


def main(argv: Sequence[str] | None = None) -> int:
    """The pipeline step: the digest of the model at ``--model`` written as JSON to ``--output``."""
    parser = argparse.ArgumentParser(description="Write the content digest of a trained model.")
    parser.add_argument("--model", required=True, help="The trained model's directory (an mlflow_model output).")
    parser.add_argument("--output", required=True, help="Where the digest is written (a uri_file output).")
    args = parser.parse_args(argv)
    digest = content_digest(args.model)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"content_digest": digest}) + "\n", encoding="utf-8")
    print(f"content digest of {args.model}: {digest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
