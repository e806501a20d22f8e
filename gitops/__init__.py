"""finetune-gitops: fine-tuning chat LLMs as reviewed pull requests.

The core library: run specs and their validation, plans, the run lifecycle, backends and the CLI.
Heavy SDKs (azure.ai.ml, mlflow, torch, transformers) are imported only where they are used.
"""

__version__ = "0.1.0"
