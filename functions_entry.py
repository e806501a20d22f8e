"""Azure Functions entry script (app setting PYTHON_SCRIPT_FILE_NAME=functions_entry.py).

The worker imports this file by its stem and needs exactly one FunctionApp at top level. It is not called
function_app.py: the function_app package beside it would shadow a module of that name.
"""

from function_app.app import build_app

app = build_app()
