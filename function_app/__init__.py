"""The Azure Functions app: thin HTTP, Event Grid and timer handlers over ``gitops``.

The worker imports the entry script named by ``PYTHON_SCRIPT_FILE_NAME`` (``functions_entry.py`` at the
repository root; it cannot be ``function_app.py``, which this package would shadow). That script holds
the one ``FunctionApp``, built by ``function_app.app.build_app`` from one blueprint per trigger family.
"""
