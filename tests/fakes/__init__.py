"""In-process fakes of remote services the tests cannot reach (the Azure ML REST API, Azure Monitor)."""
