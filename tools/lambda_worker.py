"""One warm execution environment of the emulated Lambda (started by tools/lambda_runner.py).

Imports the function's handler once, from the function's unpacked code, and says so with one line
(``{"ready": true}``, Lambda's init phase), then answers invocations as long as it lives: one JSON
line in (the event), one JSON line out, either ``{"result": ...}`` or ``{"error": {"errorMessage",
"errorType", "stackTrace"}}`` as Lambda's Python runtime reports an exception. What the function
prints goes to stderr, the function's log.

    python lambda_worker.py <handler, e.g. orchestrator.handler> <code directory> <timeout seconds>
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
import uuid


class Context:
    """The parts of Lambda's context object a handler commonly reads."""

    def __init__(self, timeout_seconds: float) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.invoked_function_arn = os.environ.get("CONSTELLATION_FUNCTION_ARN", "")
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def error(kind: str, message: str, stack: list[str] | None = None) -> dict:
    return {"error": {"errorMessage": message, "errorType": kind, "stackTrace": stack or []}}


def main() -> int:
    handler_name, code_dir, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
    protocol, sys.stdout = sys.stdout, sys.stderr  # the function's prints are its log, not answers
    sys.path.insert(0, code_dir)
    os.chdir(code_dir)
    module_name, function_name = handler_name.rsplit(".", 1)
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
        init_error = None
    except Exception as exception:  # reported on every invocation, as Lambda reports an init error
        handler = None
        init_error = error("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exception}")
    protocol.write(json.dumps({"ready": True}) + "\n")
    protocol.flush()
    for line in sys.stdin:
        if handler is None:
            answer = init_error
        else:
            try:
                answer = {"result": handler(json.loads(line), Context(timeout))}
            except Exception as exception:
                stack = traceback.format_list(traceback.extract_tb(exception.__traceback__))
                answer = error(type(exception).__name__, str(exception), stack)
        try:
            text = json.dumps(answer)
        except (TypeError, ValueError) as exception:
            text = json.dumps(error("Runtime.MarshalError", f"Unable to marshal response: {exception}"))
        protocol.write(text + "\n")
        protocol.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
