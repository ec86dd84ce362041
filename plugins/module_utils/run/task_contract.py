# -*- coding: utf-8 -*-
# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The task contract: what each planned task of a run gets, computed once for every way of running it.

A task's two containers get their environment from two places, as on Fargate:

* the task definition (:func:`container_definitions`): what is the same for every run in a region
  (the region, the home region and its resources, the results store, the aggregator's port, the
  images, sizes and logs), so that a new run registers no new revision;
* RunTask's container overrides (:func:`task_overrides`): what differs per run and per task (the
  run id, the task index, the script's location and environment, the load model, VUs and
  duration, and the task's k6 execution segment with the sequence it belongs to).

The task definition is registered with these containers and ``ecs_load_tasks`` sends these
overrides, unchanged; the emulated ECS (``tools/``) runs what ECS hands it, as Fargate does.
:func:`task_environment` merges the two as ECS does, for what runs the entrypoints directly.

Execution segments: with the ``vus`` load model each region runs its own VUs for the duration, so
its tasks split the region's VUs over the region's own sequence. With ``script`` the script's own
scenarios are the load of the whole test, so every task of every region runs one segment of ONE
sequence across all regions (:func:`config.script_load_segments`): giving each region its own
sequence would run the script's whole load in every region.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Mapping
from urllib.parse import urlsplit

from ..results.progress import ProgressError
from ..results.progress import script_key
from ..results.progress import run_objects
from ..results.progress import validate_run_id
from .config import KEY_VALUE_HINT
from .config import Config
from .config import plan
from .config import script_load_segments

# Names a script's environment may use: the others are the tasks' own (and AWS's, and k6's settings).
SCRIPT_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
RESERVED_ENV_PREFIXES = ("CONSTELLATION_", "AWS_", "K6_")
SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")

LOAD_GENERATOR = "load-generator"
AGGREGATOR = "aggregator"
# RunTask refuses overrides longer than this (ECS's limit on the overrides' JSON).
RUN_TASK_OVERRIDES_MAX_CHARS = 8192
# How long ECS waits after SIGTERM before SIGKILL, per container: Fargate allows at most 120 s.
STOP_TIMEOUT_SECONDS = 120
# ecs_load_tasks adds each task's orchestrator token at launch (never in the contract, which
# playbooks show): `{"name":"CONSTELLATION_TASK_TOKEN","value":"<43 characters>"},` is 80.
TASK_TOKEN_VARIABLE = "CONSTELLATION_TASK_TOKEN"
TASK_TOKEN_OVERRIDE_CHARS = 80
LOAD_MODELS = ("vus", "script")
RESULTS_STORES = ("timestream", "s3")

Environment = dict[str, str]
TaskOverrides = dict[str, Environment]  # container name -> the variables it gets on top of the task definition's


class ContractError(ValueError):
    """A setting the contract cannot be computed from; the message names it and its value."""


@dataclass(frozen=True)
class Home:
    """The home region's resources that tasks use (the ``constellation_home`` names)."""

    region: str
    results_store: str
    bucket: str
    function: str
    timestream_database: str = ""
    timestream_table: str = ""
    account: str = ""  # the account and partition of the deployment (the home names have them)
    partition: str = "aws"

    @classmethod
    def from_names(cls, names: Mapping[str, Any]) -> "Home":
        """From the home names (extra keys, such as ARNs, are ignored)."""
        missing = [key for key in ("region", "results_store", "bucket", "function") if not names.get(key)]
        if missing:
            raise ContractError(f"home must name {', '.join(missing)}; got {sorted(names)}")
        home = cls(
            region=names["region"],
            results_store=names["results_store"],
            bucket=names["bucket"],
            function=names["function"],
            timestream_database=names.get("timestream_database") or "",
            timestream_table=names.get("timestream_table") or "",
            account=str(names.get("account") or ""),
            partition=names.get("partition") or "aws",
        )
        if home.results_store not in RESULTS_STORES:
            raise ContractError(f"home.results_store must be timestream or s3, got {home.results_store!r}")
        if home.results_store == "timestream" and not (home.timestream_database and home.timestream_table):
            raise ContractError("home must name timestream_database and timestream_table for the timestream results store")
        return home


@dataclass(frozen=True)
class Deployment:
    """What the task definition of every region is made of, besides the region."""

    home: Home
    load_generator_image: str
    aggregator_image: str
    task_cpu: int
    task_memory: int
    log_group: str
    aggregator_cpu: int = 256
    aggregator_memory: int = 512
    aggregator_port: int = 9464
    interval_seconds: int = 5
    endpoint_url: str | None = None
    # The script's secrets (constellation_script_secrets, checked into ScriptSecret by script_secrets)
    # and the KMS key that encrypts them, when it is not AWS's own.
    script_secrets: Any = ()
    secrets_kms_key: str | None = None
    # Where the aggregators forward k6's metrics, live (LiveMetrics.from_settings); None: nowhere.
    live_metrics: "LiveMetrics | None" = None

    def __post_init__(self) -> None:
        if self.live_metrics and self.live_metrics.workspace_id and not re.fullmatch(r"\d{12}", self.home.account):
            raise ContractError(f"home.account must be the account id to grant aps:RemoteWrite on the workspace, got {self.home.account!r}")
        given = self.script_secrets
        if not (isinstance(given, tuple) and all(isinstance(secret, ScriptSecret) for secret in given)):
            object.__setattr__(self, "script_secrets", tuple(script_secrets(given or None)))
        if self.secrets_kms_key and not re.fullmatch(r"arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+", self.secrets_kms_key):
            raise ContractError(f"constellation_script_secrets_kms_key must be the ARN of a KMS key, got {self.secrets_kms_key!r}")
        for name in ("load_generator_image", "aggregator_image"):
            if not getattr(self, name):
                raise ContractError(
                    f"{name} must name an image (playbooks/build_images.yml builds both and writes their names)"
                )
        if not 0 < self.aggregator_cpu < self.task_cpu:
            raise ContractError(f"aggregator_cpu must be more than 0 and less than the task's {self.task_cpu} CPU units, got {self.aggregator_cpu}")
        if not 0 < self.aggregator_memory < self.task_memory:
            raise ContractError(f"aggregator_memory must be more than 0 and less than the task's {self.task_memory} MiB, got {self.aggregator_memory}")
        if not 0 < self.aggregator_port < 65536:
            raise ContractError(f"aggregator_port must be a TCP port (1-65535), got {self.aggregator_port}")
        if self.interval_seconds < 1:
            raise ContractError(f"interval_seconds must be at least 1, got {self.interval_seconds}")


@dataclass(frozen=True)
class Run:
    """What a run adds to every task."""

    run_id: str
    load_model: str = "vus"
    start_timeout_seconds: int = 900
    script_env: Mapping[str, str] = field(default_factory=dict)  # the script's __ENV (script_environment checks it)
    script_sha256: str | None = None  # the SHA-256 of the run's test (k6_archive), which every task checks

    def __post_init__(self) -> None:
        try:
            validate_run_id(self.run_id, "constellation_run_id")
        except ProgressError as error:
            raise ContractError(str(error)) from None
        if self.load_model not in LOAD_MODELS:
            raise ContractError(f"load_model must be one of {', '.join(LOAD_MODELS)}, got {self.load_model!r}")
        if self.start_timeout_seconds < 1:
            raise ContractError(f"start_timeout_seconds must be at least 1, got {self.start_timeout_seconds}")
        object.__setattr__(self, "script_env", script_environment(self.script_env))
        if self.script_sha256 is not None and not SHA256_PATTERN.fullmatch(self.script_sha256):
            raise ContractError(f"script_sha256 must be a SHA-256 in hex (64 digits 0-9a-f), got {self.script_sha256!r}")


def script_environment(variables: Any) -> dict[str, str]:
    """The script's environment (``constellation_script_env``), checked: names a script may use, text values.

    A JSON object given as text (``-e constellation_script_env='{"A": "b"}'``) is read as such, and
    nothing (a blank survey answer) is no variable. Numbers are taken as their text; anything else
    (a list, a mapping, a boolean, null) is refused, naming the variable.
    """
    checked = {}
    for name, value in _named_mapping(variables, "constellation_script_env").items():
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ContractError(f"constellation_script_env: the value of {name} must be text or a number, got {value!r}")
        checked[name] = str(value)
    return dict(sorted(checked.items()))


@dataclass(frozen=True)
class ScriptSecret:
    """A secret the script gets as ``__ENV.<name>``: ECS reads it from ``value_from`` when the task starts."""

    name: str
    value_from: str  # as ECS takes it: the parameter's ARN, or the secret's ARN with an optional json-key:stage:id
    service: str  # ssm or secretsmanager
    region: str
    resource_arns: tuple[str, ...]  # what IAM grants: the parameter, or the secret (any version)
    secret_id: str  # what DescribeParameters (the parameter's name) or DescribeSecret (the secret's ARN) takes


SECRET_ARN = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):(?P<service>ssm|secretsmanager):(?P<region>[a-z]{2}(-[a-z]+)+-\d):(?P<account>\d{12}):"
    r"(?:parameter(?P<parameter>/[A-Za-z0-9_.\-/]+)|secret:(?P<secret>[A-Za-z0-9/_+=.@\-]+)(?P<key>(:[^:]*){0,3}))"
)


def script_secrets(secrets: Any) -> list[ScriptSecret]:
    """``constellation_script_secrets`` checked: NAME: ARN of an SSM parameter or a Secrets Manager secret.

    Only names and ARNs pass here, never a value: ECS fetches the values when a task starts.
    """
    checked = [secret_reference(name, arn, "constellation_script_secrets") for name, arn in _named_mapping(secrets, "constellation_script_secrets").items()]
    return sorted(checked, key=lambda secret: secret.name)


def secret_reference(name: str, arn: Any, variable: str) -> ScriptSecret:
    """The secret ``arn`` that a container gets as ``name``; an error naming ``variable`` unless it is the ARN of an SSM
    parameter or a Secrets Manager secret."""
    match = SECRET_ARN.fullmatch(arn) if isinstance(arn, str) else None
    if match is None:
        raise ContractError(
            f"{variable}: {name} must be the ARN of an SSM parameter"
            " (arn:aws:ssm:REGION:ACCOUNT:parameter/NAME) or of a Secrets Manager secret"
            f" (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME, optionally :json-key::), got {arn!r}"
        )
    if match["parameter"]:
        path = match["parameter"][1:]
        # A name with a / is a path, which starts with one; ARNs leave that / out.
        resources, secret_id = (arn,), "/" + path if "/" in path else path
    else:
        secret_id = arn[: len(arn) - len(match["key"])]
        # Without the 6 characters AWS adds to a secret's ARN, it matches any of them; a name that
        # ends like them (my-secret) could be either: both.
        resources = (secret_id, secret_id + "-??????")
    return ScriptSecret(name, arn, match["service"], match["region"], resources, secret_id)


# An Amazon Managed Service for Prometheus workspace's remote-write URL.
AMP_REMOTE_WRITE = re.compile(
    r"https://aps-workspaces\.(?P<region>[a-z]{2}(-[a-z]+)+-\d)\.amazonaws\.com/workspaces/(?P<workspace>ws-[A-Za-z0-9-]+)/api/v1/remote_write"
)
LIVE_METRICS_SECRET = "CONSTELLATION_PROMETHEUS_SECRET"


@dataclass(frozen=True)
class LiveMetrics:
    """Where every task's aggregator forwards k6's metrics, live (``constellation_prometheus_*``), and how it signs in.

    An Amazon Managed Service for Prometheus workspace's URL is signed with SigV4 (the task role may
    ``aps:RemoteWrite`` to that workspace only); any other endpoint takes a bearer token, or basic
    credentials with ``username``, from ``secret`` (the ARN of an SSM parameter or a Secrets Manager
    secret, which ECS reads when a task starts), or nothing.
    """

    url: str
    secret: ScriptSecret | None = None
    username: str = ""
    auth: str = "none"  # none, sigv4, bearer, basic
    workspace_region: str = ""
    workspace_id: str = ""

    @classmethod
    def from_settings(cls, url: Any, secret: Any = None, username: Any = None) -> "LiveMetrics | None":
        """The settings checked (blank is unset); None without a URL. Errors name the variable and its value."""
        url, secret, username = (str(value or "").strip() for value in (url, secret, username))
        if not url:
            for variable, value in (("constellation_prometheus_secret", secret), ("constellation_prometheus_username", username)):
                if value:
                    raise ContractError(f"{variable} is set but constellation_prometheus_remote_write_url is not")
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ContractError(f"constellation_prometheus_remote_write_url must be an http:// or https:// URL, got {url!r}")
        if parts.username or parts.password:
            raise ContractError(
                "constellation_prometheus_remote_write_url must not hold credentials: give the token or password as"
                " constellation_prometheus_secret (the ARN of a secret)"
            )
        workspace = AMP_REMOTE_WRITE.fullmatch(url)
        if workspace:
            if secret or username:
                raise ContractError(
                    "constellation_prometheus_secret and constellation_prometheus_username do not apply to an Amazon Managed"
                    " Service for Prometheus workspace: the tasks sign with SigV4 as their task role"
                )
            return cls(url, auth="sigv4", workspace_region=workspace["region"], workspace_id=workspace["workspace"])
        if "aps-workspaces." in parts.hostname:
            raise ContractError(
                "constellation_prometheus_remote_write_url: an Amazon Managed Service for Prometheus URL must be"
                " https://aps-workspaces.REGION.amazonaws.com/workspaces/WORKSPACE_ID/api/v1/remote_write, got {url!r}".format(url=url)
            )
        if username and not secret:
            raise ContractError("constellation_prometheus_username needs constellation_prometheus_secret (the password's ARN)")
        if secret and parts.scheme != "https" and not _is_loopback(parts.hostname):
            raise ContractError(
                f"constellation_prometheus_remote_write_url must be https:// to send credentials, got {url!r}"
            )
        if not secret:
            return cls(url)
        reference = secret_reference(LIVE_METRICS_SECRET, secret, "constellation_prometheus_secret")
        return cls(url, reference, username, "basic" if username else "bearer")

    def environment(self) -> Environment:
        """The aggregator's variables for it (forward.py reads them)."""
        variables = {"CONSTELLATION_PROMETHEUS_URL": self.url, "CONSTELLATION_PROMETHEUS_AUTH": self.auth}
        if self.workspace_region:
            variables["CONSTELLATION_PROMETHEUS_REGION"] = self.workspace_region
        if self.username:
            variables["CONSTELLATION_PROMETHEUS_USERNAME"] = self.username
        return variables

    def task_statements(self, home: "Home") -> list[dict[str, Any]]:
        """What the task role needs: remote write to that one workspace."""
        if not self.workspace_id:
            return []
        arn = f"arn:{home.partition}:aps:{self.workspace_region}:{home.account}:workspace/{self.workspace_id}"
        return [_allow("RemoteWriteTheLiveMetrics", "aps:RemoteWrite", [arn])]


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _named_mapping(variables: Any, variable: str) -> dict[str, Any]:
    """``variables`` as a mapping whose names a script may use; JSON text is read, nothing is empty."""
    if isinstance(variables, str):
        try:
            variables = json.loads(variables) if variables.strip() else None
        except ValueError:
            raise ContractError(
                f"{variable} must be a mapping of NAME: value (or a JSON object), got {variables!r} ({KEY_VALUE_HINT})"
            ) from None
    if variables is None:
        return {}
    if not isinstance(variables, Mapping):
        raise ContractError(f"{variable} must be a mapping of NAME: value, got {variables!r}")
    for name in variables:
        if not isinstance(name, str) or not SCRIPT_ENV_NAME.fullmatch(name):
            raise ContractError(
                f"{variable}: {name!r} is not an environment variable name (letters, digits and _, not starting with a digit)"
            )
        if name.upper().startswith(RESERVED_ENV_PREFIXES):
            raise ContractError(
                f"{variable}: {name!r} is reserved: names starting with {', '.join(RESERVED_ENV_PREFIXES)} are the tasks' own"
            )
    return dict(variables)


def container_definitions(region: str, deployment: Deployment) -> list[dict[str, Any]]:
    """The task definition's two containers in ``region``: the load generator (essential) and its aggregator."""
    home = deployment.home
    common = {
        "CONSTELLATION_REGION": region,
        "CONSTELLATION_HOME_REGION": home.region,
        "CONSTELLATION_INTERVAL_SECONDS": str(deployment.interval_seconds),
        "CONSTELLATION_AGGREGATOR_PORT": str(deployment.aggregator_port),
    }
    if deployment.endpoint_url:
        common["CONSTELLATION_AWS_ENDPOINT_URL"] = deployment.endpoint_url
    generator = {"CONSTELLATION_ORCHESTRATOR": f"lambda:{home.function}", "CONSTELLATION_BUCKET": home.bucket}
    results = {"CONSTELLATION_RESULTS_STORE": home.results_store, "CONSTELLATION_BUCKET": home.bucket}
    if home.results_store == "timestream":
        results["CONSTELLATION_TIMESTREAM_DATABASE"] = home.timestream_database
        results["CONSTELLATION_TIMESTREAM_TABLE"] = home.timestream_table
    return [
        _container(
            LOAD_GENERATOR,
            deployment.load_generator_image,
            essential=True,
            cpu=deployment.task_cpu - deployment.aggregator_cpu,
            memory=deployment.task_memory - deployment.aggregator_memory,
            environment=common | generator,
            region=region,
            log_group=deployment.log_group,
        )
        | _secrets(deployment.script_secrets),
        _container(
            AGGREGATOR,
            deployment.aggregator_image,
            essential=False,
            cpu=deployment.aggregator_cpu,
            memory=deployment.aggregator_memory,
            environment=common | results | (deployment.live_metrics.environment() if deployment.live_metrics else {}),
            region=region,
            log_group=deployment.log_group,
        )
        | _secrets(_live_metrics_secret(deployment)),
    ]


def _live_metrics_secret(deployment: Deployment) -> tuple[ScriptSecret, ...]:
    metrics = deployment.live_metrics
    return (metrics.secret,) if metrics and metrics.secret else ()


def _secrets(secrets: tuple[ScriptSecret, ...]) -> dict[str, Any]:
    """A container's secrets, which ECS reads when the task starts: their ARNs only."""
    return {"secrets": [{"name": secret.name, "valueFrom": secret.value_from} for secret in secrets]} if secrets else {}


def _container(
    name: str, image: str, *, essential: bool, cpu: int, memory: int, environment: Environment, region: str, log_group: str
) -> dict[str, Any]:
    return {
        "name": name,
        "image": image,
        "essential": essential,
        "cpu": cpu,
        "memoryReservation": memory,
        "environment": [{"name": key, "value": value} for key, value in sorted(environment.items())],
        # An init process as PID 1 passes SIGTERM on: a program that is PID 1 itself ignores it until
        # it has installed its handler, so a StopTask in its first second would wait for SIGKILL.
        "linuxParameters": {"initProcessEnabled": True},
        # A stopped task (StopTask, a Spot interruption) ends k6 gracefully, then the aggregator
        # flushes: Fargate's longest wait before SIGKILL, not its default 30 s.
        "stopTimeout": STOP_TIMEOUT_SECONDS,
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {"awslogs-group": log_group, "awslogs-region": region, "awslogs-stream-prefix": name},
        },
    }


def task_overrides(config: Config, run: Run) -> dict[str, list[TaskOverrides]]:
    """Every planned task's container overrides, by region; task index ``i`` is the ``i``-th element."""
    regions = plan(config)["remote_regions"]
    whole_test = script_load_segments(config) if run.load_model == "script" else None
    if whole_test and config.shapes:
        raise ContractError(
            f"remote regions {', '.join(sorted(config.shapes))} have a shape (stages or start_after), which the script load"
            " model cannot run: it takes each region's value as its share of the script's own scenarios. Use the vus load"
            " model, or give those regions a number"
        )
    shared = {
        "CONSTELLATION_RUN_ID": run.run_id,
        "CONSTELLATION_SCRIPT_KEY": script_key(run.run_id),
        "CONSTELLATION_LOAD_MODEL": run.load_model,
        "CONSTELLATION_START_TIMEOUT_SECONDS": str(run.start_timeout_seconds),
    }
    if run.script_sha256:
        shared["CONSTELLATION_SCRIPT_SHA256"] = run.script_sha256
    if run.script_env:
        shared["CONSTELLATION_SCRIPT_ENV"] = json.dumps(run.script_env, separators=(",", ":"))
    overrides: dict[str, list[TaskOverrides]] = {}
    for region, region_plan in regions.items():
        if whole_test is None:
            segments, sequence = region_plan["execution_segments"], region_plan["execution_segment_sequence"]
        else:
            segments, sequence = whole_test["regions"][region]["execution_segments"], whole_test["execution_segment_sequence"]
        overrides[region] = [
            {
                LOAD_GENERATOR: shared
                | _shape(region_plan)
                | {
                    "CONSTELLATION_TASK_INDEX": str(index),
                    "CONSTELLATION_VUS": str(region_plan["vus"]),
                    "CONSTELLATION_EXECUTION_SEGMENT": segment,
                    "CONSTELLATION_EXECUTION_SEGMENT_SEQUENCE": sequence,
                },
                AGGREGATOR: {"CONSTELLATION_RUN_ID": run.run_id, "CONSTELLATION_TASK_INDEX": str(index)},
            }
            for index, segment in enumerate(segments)
        ]
        for index, task in enumerate(overrides[region]):
            _check_overrides_length(region, index, task)
    return overrides


def _shape(region_plan: Mapping[str, Any]) -> Environment:
    """How long the region's tasks run load, and their k6 stages (``duration ms:target`` pairs) when it has a shape."""
    variables = {"CONSTELLATION_DURATION_MS": str(region_plan["duration_ms"])}
    if region_plan["stages"]:
        variables["CONSTELLATION_STAGES"] = ",".join(f"{duration}:{target}" for duration, target in region_plan["stages"])
    return variables


def run_task_overrides(task: TaskOverrides) -> dict[str, Any]:
    """RunTask's ``overrides`` for a task: each container's environment on top of the task definition's."""
    return {
        "containerOverrides": [
            {"name": name, "environment": [{"name": key, "value": str(value)} for key, value in sorted(environment.items())]}
            for name, environment in sorted(task.items())
        ]
    }


def _check_overrides_length(region: str, index: int, task: TaskOverrides) -> None:
    length = len(json.dumps(run_task_overrides(task), separators=(",", ":"))) + TASK_TOKEN_OVERRIDE_CHARS
    if length > RUN_TASK_OVERRIDES_MAX_CHARS:
        raise ContractError(
            f"{region}: the RunTask overrides of task {index} would be {length} characters, over ECS's limit of"
            f" {RUN_TASK_OVERRIDES_MAX_CHARS}: the execution segment sequence names every task of the region (of"
            " the whole test with the script load model), so run fewer tasks (a higher constellation_max_vus_per_task)"
            " or give a shorter constellation_script_env"
        )


def k6_env_arguments(script_env: Mapping[str, str]) -> list[str]:
    """``k6`` command-line arguments that give the script its environment (``__ENV.NAME``) and k6 itself nothing."""
    return [argument for name, value in sorted(script_env.items()) for argument in ("--env", f"{name}={value}")]


def task_environment(containers: list[dict[str, Any]], overrides: TaskOverrides, container: str) -> Environment:
    """The environment ``container`` of a task runs with: the task definition's, then the task's overrides (which win)."""
    definition = next((c for c in containers if c["name"] == container), None)
    if definition is None:
        raise ContractError(f"the task definition has no container {container!r}: {[c['name'] for c in containers]}")
    return {item["name"]: item["value"] for item in definition.get("environment", [])} | dict(overrides.get(container, {}))


def manifest(config: Config, run: Run, script_name: str) -> dict[str, Any]:
    """The run as it was planned, which run_test keeps beside the script and visualize shows."""
    planned_run = plan(config)
    planned = planned_run["remote_regions"]
    return {
        "run_id": run.run_id,
        "deployment": config.deployment,
        "executor": "fargate",
        "home_region": config.home_region,
        "results_store": config.results_store,
        "duration_ms": planned_run["duration_ms"],
        "load_model": run.load_model,
        "script": script_name,
        "script_sha256": run.script_sha256,
        "regions": {
            region: {"vus": p["vus"], "tasks": p["tasks"], "duration_ms": p["duration_ms"], "planned_vus": p["planned_vus"]}
            for region, p in planned.items()
        },
    }


def contract(
    config: Config, deployment: Deployment, run: Run | None, regions: list[str] | None = None
) -> dict[str, dict[str, Any]]:
    """By region: the task definition's ``containers``, every task's overrides (``tasks``) and the keys of
    the run's objects in the home bucket (``run_objects``: script, manifest, records); no tasks and no
    keys without a run."""
    unknown = sorted(set(regions or ()) - set(config.remote_regions))
    if unknown:
        raise ContractError(f"regions {unknown} are not remote regions of the configuration ({sorted(config.remote_regions)})")
    both = sorted(set(run.script_env if run else ()) & {secret.name for secret in deployment.script_secrets})
    if both:
        raise ContractError(f"{', '.join(both)}: in both constellation_script_env and constellation_script_secrets; name each once")
    overrides = task_overrides(config, run) if run is not None else {}
    objects = run_objects(run.run_id) if run is not None else {}
    return {
        region: {
            "containers": container_definitions(region, deployment),
            "tasks": overrides.get(region, []),
            "run_objects": objects,
            "secret_statements": secret_statements(deployment),
            "task_statements": deployment.live_metrics.task_statements(deployment.home) if deployment.live_metrics else [],
        }
        for region in sorted(regions or config.remote_regions)
    }


def secret_statements(deployment: Deployment) -> list[dict[str, Any]]:
    """What the task execution role needs to hand the containers their secrets (the script's, the live metrics'):
    exactly those, and their key."""
    secrets = deployment.script_secrets + _live_metrics_secret(deployment)
    by_service: dict[str, list[str]] = {}
    for secret in secrets:
        by_service.setdefault(secret.service, []).extend(secret.resource_arns)
    statements = []
    if "ssm" in by_service:
        statements.append(_allow("ReadTheScriptsParameters", "ssm:GetParameters", by_service["ssm"]))
    if "secretsmanager" in by_service:
        statements.append(_allow("ReadTheScriptsSecrets", "secretsmanager:GetSecretValue", by_service["secretsmanager"]))
    if secrets and deployment.secrets_kms_key:
        statements.append(_allow("DecryptTheScriptsSecrets", "kms:Decrypt", [deployment.secrets_kms_key]))
    return statements


def _allow(sid: str, action: str, resources: list[str]) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": action, "Resource": sorted(set(resources))}
