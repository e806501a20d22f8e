"""The Azure Functions app: thin HTTP, Event Grid and timer handlers over ``gitops``.

Not built yet (see the Functions/Actions/infrastructure issue); the lifecycle it will call is
``gitops.lifecycle.flow.Lifecycle`` (``submit``, ``on_job_event``, ``reconcile``).
"""
