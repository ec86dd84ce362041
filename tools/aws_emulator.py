"""The emulated AWS (`make emulator`): moto, plus what moto cannot do, behind one endpoint.

* **moto** serves every AWS API the playbooks call, on one endpoint for every service, with
  DynamoDB requests served one at a time: moto computes an ``ADD`` to a set from the item as it
  is and then stores it, so two concurrent updates of one item could lose one, which DynamoDB
  never does (the orchestrator counts registrations with such ``ADD``s).
* **ECS tasks run.** Every task RunTask starts runs as a podman pod of real containers from the
  task definition's images (tools/ecs_runner.py); StopTask stops it; DescribeTasks shows its
  containers' states and exit codes. The images are pulled from the registry on loopback
  (tools/registry.py), where `make images` pushed them.
* **Lambda functions run.** Invoke runs the deployed function's code (tools/lambda_runner.py).
* **Task role credentials** are served to the tasks' containers, as ECS serves them, at
  ``/_emulator/ecs-credentials/<task id>``.
* **Faults on request.** ``POST /_emulator/faults`` with a JSON list of rules answers a share of
  the requests each rule matches with an AWS error instead of serving them (see :class:`Faults`);
  ``GET /_emulator/faults`` counts what was injected (a POST answers the counts of the rules it replaced). Fault tests throttle the results store, deny
  it, or make the orchestrator function fail now and then, on the path users run.
* **Service Quotas** knows the Fargate On-Demand vCPU quota (``L-3032A538``), which moto does not:
  ``CONSTELLATION_EMULATOR_FARGATE_VCPUS`` vCPUs per region (6 unless set), so that check.yml
  compares the plan with a quota here as it does on AWS.

It prints one line, ``endpoint: http://127.0.0.1:PORT``, once it is ready, serves until SIGTERM
or Ctrl-C, and then stops every task (SIGTERM, SIGKILL after a grace), every function
environment, the registry if it started it, and itself. Logs (its own, each task's containers',
each function's) are under ``--log-dir``.

    python tools/aws_emulator.py [--port 5000] [--log-dir .build/emulator] [--without-tasks] [--stop-at-end-of-input]

``--without-tasks`` records tasks as moto does and runs none (no podman, no registry): what the
tests of single modules use.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import random
import signal
import sys
import threading
import uuid
from pathlib import Path

from moto.awslambda.models import LambdaBackend
from moto.ecs.exceptions import InvalidParameterException
from moto.ecs.models import EC2ContainerServiceBackend
from moto.logs.models import logs_backends
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.moto_server.werkzeug_app import MotoRequestHandler
from moto.moto_server.werkzeug_app import create_backend_app
from moto.servicequotas.models import ServiceQuotasBackend
from werkzeug.serving import make_server

import ecs_runner
import podman
import registry
import services
from lambda_runner import FunctionRunner

REPO = Path(__file__).resolve().parents[1]
LOG = logging.getLogger("emulator")
CREDENTIALS_PATH = "/_emulator/ecs-credentials/"
RUN_TASK_OVERRIDES_MAX_CHARS = 8192  # ECS's limit on RunTask's overrides
FARGATE_VCPU_QUOTA = ("fargate", "L-3032A538")


FAULTS_PATH = "/_emulator/faults"


class Faults:
    """Errors answered instead of AWS's for a share of the requests a rule matches.

    A rule: ``name`` (what the counts say), ``method`` (``PUT``...), ``path_contains`` (a part of the
    request's path: ``/records/us-east-2/1/``, ``/invocations``), optionally ``path_suffix``
    (``.jsonl``: records, not the progress object), optionally ``body_contains`` (a part of the
    request's body: ``"task_id": "1"``), ``share`` (0 to 1 of the matching
    requests), ``status`` and ``code`` (``503`` ``SlowDown``, ``403`` ``AccessDenied``, ``429``
    ``TooManyRequestsException``) and ``protocol`` (``xml`` as S3 answers, ``json`` as Lambda's REST
    API does). The first rule that matches decides; every injected error is counted by rule name.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rules: list[dict] = []
        self.injected: dict[str, int] = {}
        self.random = random.Random(7)

    def configure(self, rules: list[dict]) -> None:
        with self.lock:
            self.rules, self.injected = list(rules), {rule["name"]: 0 for rule in rules}

    def pick(self, environ) -> dict | None:
        """The rule whose error answers this request, counted; None to serve it."""
        path = environ.get("PATH_INFO", "")
        with self.lock:
            rules = list(self.rules)
        body = None
        if any("body_contains" in rule for rule in rules):
            # Read whole, and handed on to moto as if unread.
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(body)
        with self.lock:
            for rule in rules:
                if (
                    environ.get("REQUEST_METHOD") == rule["method"]
                    and rule["path_contains"] in path
                    and path.endswith(rule.get("path_suffix", ""))
                    and ("body_contains" not in rule or rule["body_contains"].encode() in body)
                ):
                    if self.random.random() < rule["share"]:
                        self.injected[rule["name"]] += 1
                        return rule
                    return None
        return None

    @staticmethod
    def answer(rule: dict, start_response):
        message = f"injected by the emulator's fault rule {rule['name']!r}"
        if rule.get("protocol") == "json":
            body = json.dumps({"Type": "User", "message": message}).encode()
            headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", rule["code"])]
        else:
            body = f"<Error><Code>{rule['code']}</Code><Message>{message}</Message></Error>".encode()
            headers = [("Content-Type", "application/xml")]
        start_response(f"{rule['status']} {rule['code']}", [*headers, ("Content-Length", str(len(body)))])
        return [body]


class EmulatedAWS(DomainDispatcherApplication):
    """moto's WSGI application: DynamoDB one request at a time, task credentials, resets that stop tasks,
    faults on request."""

    dynamodb_lock = threading.Lock()
    tasks: ecs_runner.TaskRunner | None = None
    functions: FunctionRunner | None = None
    faults = Faults()

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith(CREDENTIALS_PATH):
            return self._credentials(path[len(CREDENTIALS_PATH):], environ, start_response)
        if path == FAULTS_PATH:
            return self._faults(environ, start_response)
        fault = self.faults.pick(environ)
        if fault is not None:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            if length:
                environ["wsgi.input"].read(length)  # the request is taken whole, as AWS would
            return self.faults.answer(fault, start_response)
        if path == "/moto-api/reset" and environ.get("REQUEST_METHOD") == "POST":
            if self.tasks:
                self.tasks.reset()
            if self.functions:
                self.functions.reset()
        # DynamoDB's JSON protocol names the operation in this header: DynamoDB_20120810.UpdateItem
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            with self.dynamodb_lock:
                return super().__call__(environ, start_response)
        return super().__call__(environ, start_response)

    def _faults(self, environ, start_response):
        with self.faults.lock:
            body = json.dumps({"injected": dict(self.faults.injected)}).encode()
        if environ.get("REQUEST_METHOD") == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            self.faults.configure(json.loads(environ["wsgi.input"].read(length) or b"[]"))
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    def _credentials(self, task_id: str, environ, start_response):
        found = self.tasks.credentials(task_id, environ.get("HTTP_AUTHORIZATION", "")) if self.tasks else None
        status = "200 OK" if found else "404 Not Found"
        body = json.dumps(found or {"message": f"no running task {task_id!r} with that authorization token"}).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


def install(runner: ecs_runner.TaskRunner | None, functions: FunctionRunner) -> None:
    """Make moto's RunTask, StopTask and Invoke do what ECS and Lambda do (this process only)."""
    EmulatedAWS.tasks, EmulatedAWS.functions = runner, functions

    def invoke(self, function_name, qualifier, body, headers, response_headers):
        function = self.get_function(function_name, qualifier)
        payload, function_error = functions.invoke(function, body.encode() if isinstance(body, str) else body or b"")
        if function_error:
            response_headers["x-amz-function-error"] = function_error
        response_headers["Content-Length"] = str(len(payload))
        return payload

    moto_delete_function = LambdaBackend.delete_function

    def delete_function(self, function_name, qualifier=None):
        moto_delete_function(self, function_name, qualifier)
        functions.forget(self.region_name, function_name.rsplit(":", 1)[-1])

    LambdaBackend.invoke = invoke
    LambdaBackend.delete_function = delete_function
    moto_get_service_quota = ServiceQuotasBackend.get_service_quota

    def get_service_quota(self, service_code, quota_code):
        if (service_code, quota_code) != FARGATE_VCPU_QUOTA:
            return moto_get_service_quota(self, service_code, quota_code)
        arn = f"arn:aws:servicequotas:{self.region_name}:{self.account_id}:fargate/{quota_code}"
        return {
            "ServiceCode": service_code, "ServiceName": "AWS Fargate", "QuotaArn": arn, "QuotaCode": quota_code,
            "QuotaName": "Fargate On-Demand vCPU resource count", "Unit": "None", "Adjustable": True, "GlobalQuota": False,
            "Value": float(os.environ.get("CONSTELLATION_EMULATOR_FARGATE_VCPUS", "6")),
        }

    ServiceQuotasBackend.get_service_quota = get_service_quota
    moto_run_task, moto_stop_task = EC2ContainerServiceBackend.run_task, EC2ContainerServiceBackend.stop_task

    def run_task(self, cluster_str, task_definition_str, count, overrides, *args, **kwargs):
        length = len(json.dumps(overrides or {}, separators=(",", ":")))
        if length > RUN_TASK_OVERRIDES_MAX_CHARS:  # ECS refuses them; moto would not
            raise InvalidParameterException(f"Container Overrides length must be at most {RUN_TASK_OVERRIDES_MAX_CHARS}")
        started = moto_run_task(self, cluster_str, task_definition_str, count, overrides, *args, **kwargs)
        for task in started if runner is not None else ():
            runner.take(self, task)
        return started

    EC2ContainerServiceBackend.run_task = run_task
    if runner is None:
        return

    def stop_task(self, cluster_str, task_str, reason):
        task_id = task_str.rsplit("/", 1)[-1]
        found = [task for cluster in self.tasks.values() for arn, task in cluster.items() if arn.endswith(task_id)]
        status_before = found[0].last_status if found else None
        task = moto_stop_task(self, cluster_str, task_str, reason)
        task.last_status = status_before or task.last_status  # moto says STOPPED at once; the containers decide
        runner.stop(task, reason)
        return task

    EC2ContainerServiceBackend.stop_task = stop_task


def write_logs(account_id: str, region: str, group: str, stream: str, events: list[ecs_runner.LogLine]) -> None:
    """Put a container's output into its CloudWatch Logs group and stream (what the awslogs driver does)."""
    backend = logs_backends[account_id][region]
    backend.ensure_log_stream(group, stream)
    for start in range(0, len(events), 1000):
        batch = [{"timestamp": millis, "message": text} for millis, text in events[start:start + 1000]]
        if batch:
            backend.put_log_events(group, stream, batch)


def serve(port: int, log_dir: Path, with_tasks: bool, stop: threading.Event) -> None:
    session = uuid.uuid4().hex[:12]
    app = EmulatedAWS(create_backend_app)
    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=MotoRequestHandler)
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    functions = FunctionRunner(endpoint, log_dir / "functions" / "code", log_dir / "functions")
    tasks = None
    registry_context = None
    try:
        if with_tasks:
            podman_env = podman.environment()
            podman.binary()
            registry_context = registry.loopback_registry()
            registry_context.__enter__()
            tasks = ecs_runner.TaskRunner(session, endpoint, log_dir, podman_env, write_logs)
        install(tasks, functions)
        thread = threading.Thread(target=server.serve_forever, name="moto", daemon=True)
        thread.start()
        LOG.info("session %s: moto%s on %s; logs in %s", session, ", ECS tasks in podman" if tasks else "", endpoint, log_dir)
        print(f"endpoint: {endpoint}", flush=True)
        stop.wait()
        LOG.info("stopping: tasks first (their aggregators still reach the endpoint), then functions and moto")
    finally:
        if tasks is not None:
            tasks.shutdown()
        functions.shutdown()
        server.shutdown()
        if registry_context is not None:
            registry_context.__exit__(None, None, None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("CONSTELLATION_EMULATOR_PORT", "5000")),
                        help="port on 127.0.0.1 (0: any free port); default 5000 or CONSTELLATION_EMULATOR_PORT")
    parser.add_argument("--log-dir", type=Path, default=REPO / ".build" / "emulator", help="where the logs go")
    parser.add_argument("--without-tasks", action="store_true", help="record ECS tasks without running them")
    parser.add_argument(
        "--stop-at-end-of-input", action="store_true",
        help="also stop when standard input ends (the process that started it, holding the other end, is gone)",
    )
    options = parser.parse_args(argv)
    options.log_dir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    stop = threading.Event()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signal_number, lambda *_: stop.set())
    if options.stop_at_end_of_input:
        threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), name="stdin", daemon=True).start()
    try:
        serve(options.port, options.log_dir, not options.without_tasks, stop)
    except (OSError, podman.PodmanError, registry.RegistryError, services.ServiceError) as error:
        print(f"emulator: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
