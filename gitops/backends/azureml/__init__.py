"""The Azure ML backend: the ``Backend`` interface on azure-ai-ml. ``azure.ai.ml`` is imported only in here."""
