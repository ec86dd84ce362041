# -*- coding: utf-8 -*-
# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The test configuration: load it, validate all of it, and turn it into a run plan.

Two sources describe a test, alone or together (a field given by both is an error):

* the seed's JSON file, accepted exactly as the seed wrote it and strictly typed::

      {"DURATION": 20000, "HOME_REGION": "eu-central-1",
       "REMOTE_REGIONS": {"ap-northeast-1": 5, "us-east-2": 202}}

  DURATION is in milliseconds; each REMOTE_REGIONS value is that region's VU count;
* native settings (module options, playbook variables, AWX surveys): home_region,
  remote_regions, duration_seconds, results_store, max_vus_per_task, deployment, task_cpu,
  task_memory, and the synchronized start's start_lead_seconds and start_timeout_seconds. Surveys
  deliver numbers as strings, so a string of digits is accepted here, and the regions as JSON text.

Every problem raises ConfigError naming the field and the bad value; nothing else escapes.
Pure Python: used by the plan module and usable from any other Python code.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import types
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from fractions import Fraction
from typing import Any
from typing import NamedTuple

from ..results.thresholds import duration_ms as k6_duration_ms
from .regions import HOME_REGION_SERVICES
from .regions import REMOTE_REGION_SERVICES
from .regions import TIMESTREAM_LIVEANALYTICS_REGIONS
from .regions import UnsupportedRegion
from .regions import validate_region

DURATION_MS_RANGE = (1_000, 86_400_000)  # one second to one day
DURATION_SECONDS_RANGE = (DURATION_MS_RANGE[0] // 1000, DURATION_MS_RANGE[1] // 1000)
VUS_PER_REGION_RANGE = (1, 50_000)
MAX_VUS_PER_TASK_RANGE = (1, 5_000)
# A region's shape: k6 ramping-vus stages (at most this many), after an optional start_after.
MAX_STAGES = 100
REGION_FIELDS = ("vus", "stages", "start_after")
STAGE_FIELDS = ("duration", "target")
# The largest plans measured to stay within AWS's limits (benchmarks/orchestrator_scale.py): the run's
# orchestrator item under DynamoDB's 400 KB, each task's RunTask overrides under ECS's 8,192 characters.
MAX_TASKS_PER_RUN = 2_000
MAX_TASKS_PER_REGION = 500
DEFAULT_MAX_VUS_PER_TASK = 200

RESULTS_STORES = ("timestream", "s3")
DEFAULT_RESULTS_STORE = "timestream"

# The deployment name prefixes S3 bucket names, which allow lowercase letters, digits and
# hyphens; 24 characters leave room for the suffixes the roles append.
DEFAULT_DEPLOYMENT = "constellation"
DEPLOYMENT_MAX_LENGTH = 24
_DEPLOYMENT_PATTERN = re.compile(r"[a-z](?:[a-z0-9-]*[a-z0-9])?")

# Valid Fargate (Linux) task sizes: CPU units -> memory MiB. Source: Amazon ECS developer
# guide, "Task CPU and memory" for the Fargate launch type.
FARGATE_MEMORY_BY_CPU: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4096 + 1, 1024)),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),
    16384: tuple(range(32768, 122880 + 1, 8192)),
}
DEFAULT_TASK_CPU = 1024
DEFAULT_TASK_MEMORY = 2048

# The synchronized start: from the last task registering to the start everywhere, and how long a
# load generator waits for that start before it gives up.
START_LEAD_SECONDS_RANGE = (0, 3_600)
DEFAULT_START_LEAD_SECONDS = 30
START_TIMEOUT_SECONDS_RANGE = (1, 86_400)
DEFAULT_START_TIMEOUT_SECONDS = 900
# Where tasks run: on demand, on Fargate Spot, or a share of each region's tasks on Spot (mixed).
CAPACITIES = ("fargate", "fargate_spot", "mixed")
DEFAULT_CAPACITY = "fargate"
SPOT_PERCENT_RANGE = (1, 99)
DEFAULT_SPOT_PERCENT = 50

CONFIG_FILE_MAX_BYTES = 1024 * 1024
CONFIG_FILE_KEYS = ("DURATION", "HOME_REGION", "REMOTE_REGIONS")
NATIVE_SETTINGS = (
    "home_region",
    "remote_regions",
    "duration_seconds",
    "results_store",
    "max_vus_per_task",
    "deployment",
    "task_cpu",
    "task_memory",
    "start_lead_seconds",
    "start_timeout_seconds",
    "capacity",
    "spot_percent",
)
# The playbooks' variables are the native settings with this prefix (constellation_remote_regions).
VARIABLE_PREFIX = "constellation_"
_NATIVE_NAME = re.compile(r"(?<![\w.'\"])(" + "|".join(NATIVE_SETTINGS) + r")\b")
# The config file key and the native setting that give the same field.
_SHARED_FIELDS = {"DURATION": "duration_seconds", "HOME_REGION": "home_region", "REMOTE_REGIONS": "remote_regions"}
_DIGITS = re.compile(r"\s*([0-9]{1,18})\s*")
_SHOWN_VALUE_MAX_CHARS = 80
# Ansible's -e key=value ends a value at its first unquoted space, so JSON typed there arrives cut.
KEY_VALUE_HINT = (
    "on the command line, -e key=value ends the value at its first space: write the JSON without spaces, "
    "or give it as -e '{\"key\": ...}'"
)


class ConfigError(ValueError):
    """An invalid configuration. The message names field and value and says what is allowed."""

    def __init__(self, field: str, value: Any, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.value = value


@dataclass(frozen=True)
class Config:
    """A validated test configuration."""

    home_region: str
    remote_regions: Mapping[str, int]
    duration_ms: int
    results_store: str = DEFAULT_RESULTS_STORE
    max_vus_per_task: int = DEFAULT_MAX_VUS_PER_TASK
    deployment: str = DEFAULT_DEPLOYMENT
    task_cpu: int = DEFAULT_TASK_CPU
    task_memory: int = DEFAULT_TASK_MEMORY
    start_lead_seconds: int = DEFAULT_START_LEAD_SECONDS
    start_timeout_seconds: int = DEFAULT_START_TIMEOUT_SECONDS
    # The regions given a shape (REMOTE_REGIONS values that are objects with stages or start_after):
    # region -> {"start_after_ms": ms, "stages": [[duration_ms, target], ...] or None (constant VUs)}.
    # remote_regions holds their peak VUs, duration_ms is the constant regions' length.
    shapes: Mapping[str, Mapping[str, Any]] = dataclass_field(default_factory=dict)
    capacity: str = DEFAULT_CAPACITY
    spot_percent: int = DEFAULT_SPOT_PERCENT  # with mixed: the share of each region's tasks on Spot, rounded down

    def to_dict(self) -> dict[str, Any]:
        return {
            "home_region": self.home_region,
            "remote_regions": dict(self.remote_regions),
            "duration_ms": self.duration_ms,
            "results_store": self.results_store,
            "max_vus_per_task": self.max_vus_per_task,
            "deployment": self.deployment,
            "task_cpu": self.task_cpu,
            "task_memory": self.task_memory,
            "start_lead_seconds": self.start_lead_seconds,
            "start_timeout_seconds": self.start_timeout_seconds,
            "capacity": self.capacity,
            "spot_percent": self.spot_percent,
            "shapes": {
                region: {"start_after_ms": shape["start_after_ms"], "stages": [list(stage) for stage in shape["stages"]] if shape["stages"] else None}
                for region, shape in sorted(self.shapes.items())
            },
        }


# --- showing values in messages --------------------------------------------------------------


def _show(value: Any) -> str:
    if value is None or isinstance(value, bool):
        shown = json.dumps(value)
    else:
        shown = repr(value)
    if len(shown) > _SHOWN_VALUE_MAX_CHARS:
        shown = shown[: _SHOWN_VALUE_MAX_CHARS - 3] + "..."
    return shown


_KINDS = {
    bool: "a boolean",
    int: "an integer",
    float: "a floating-point number",
    str: "a string",
    list: "a list",
    dict: "an object",
    type(None): "no value",
}


def _kind(value: Any) -> str:
    return _KINDS.get(type(value), f"a {type(value).__name__}")


def _suggestion(word: str, choices: tuple[str, ...]) -> str:
    matches = difflib.get_close_matches(word, choices, n=1)
    return f"; did you mean {matches[0]!r}?" if matches else ""


# --- reading the config file -----------------------------------------------------------------


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _read_text(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            data = handle.read(CONFIG_FILE_MAX_BYTES + 1)
    except IsADirectoryError:
        raise ConfigError("config", path, f"config {path!r} is a directory; give the path of the JSON config file") from None
    except FileNotFoundError:
        raise ConfigError("config", path, f"config file {path!r} does not exist") from None
    except PermissionError:
        raise ConfigError("config", path, f"config file {path!r} is not readable: permission denied") from None
    except (OSError, ValueError) as error:
        raise ConfigError("config", path, f"config file {path!r} cannot be read: {error}") from None
    if len(data) > CONFIG_FILE_MAX_BYTES:
        raise ConfigError("config", path, f"config file {path!r} is larger than {CONFIG_FILE_MAX_BYTES} bytes; is it the right file?")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ConfigError("config", path, f"config file {path!r} is not UTF-8 text (bad byte at offset {error.start})") from None


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """The config file's top-level object, parsed strictly (no duplicate keys)."""
    if not isinstance(path, (str, os.PathLike)):
        raise ConfigError("config", path, f"config must be the path of a JSON file; got {_show(path)} ({_kind(path)})")
    path = os.fspath(path)
    text = _read_text(path)
    try:
        document = json.loads(text, object_pairs_hook=_object_without_duplicates)
    except _DuplicateKey as duplicate:
        raise ConfigError(
            "config", duplicate.key, f"config file {path!r} has the key {duplicate.key!r} more than once; keep one"
        ) from None
    except json.JSONDecodeError as error:
        raise ConfigError(
            "config", path, f"config file {path!r} is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    except (ValueError, RecursionError) as error:
        raise ConfigError("config", path, f"config file {path!r} is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise ConfigError(
            "config", document, f"config file {path!r} must hold a JSON object like {{\"DURATION\": 20000, ...}}; got {_kind(document)}"
        )
    return document


def _check_file_keys(document: Mapping[str, Any], path: str | None) -> None:
    for key in document:
        if key not in CONFIG_FILE_KEYS:
            raise ConfigError(
                "config",
                key,
                f"config file {path!r} has an unknown key {key!r}; the keys are "
                f"{', '.join(CONFIG_FILE_KEYS)}{_suggestion(key.upper(), CONFIG_FILE_KEYS)}",
            )


def _check_native_names(native: Mapping[str, Any]) -> None:
    for name in native:
        if name not in NATIVE_SETTINGS:
            raise ConfigError(
                name,
                native[name],
                f"unknown setting {name!r}; the settings are "
                f"{', '.join(NATIVE_SETTINGS)}{_suggestion(str(name).lower(), NATIVE_SETTINGS)}",
            )


def _check_not_both_given(document: Mapping[str, Any], native: Mapping[str, Any], path: str | None) -> None:
    for file_key, native_name in _SHARED_FIELDS.items():
        if file_key in document and native_name in native:
            raise ConfigError(
                native_name,
                native[native_name],
                f"{file_key} in the config file {path!r} and {native_name} both given; use one",
            )


def not_blank(value: Any) -> Any:
    """None for an empty or blank string (an optional AWX survey question left blank), else value."""
    if isinstance(value, str) and not value.strip():
        return None
    return value


def named_as_variables(message: str) -> str:
    """A ConfigError's message with each native setting named as the playbook variable that carries it
    (the config role's errors name what the user typed, not the plan module's options)."""
    return _NATIVE_NAME.sub(lambda match: VARIABLE_PREFIX + match.group(1), message)


# --- field validators -------------------------------------------------------------------------


def _as_integer(value: Any, digits_ok: bool) -> int | None:
    """value as an int, or None; digits_ok accepts a string of digits (native settings only)."""
    if digits_ok and isinstance(value, str) and _DIGITS.fullmatch(value):
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def _integer(field: str, value: Any, bounds: tuple[int, int], unit: str, label: str | None = None, digits_ok: bool = False) -> int:
    label = label or field
    lowest, highest = bounds
    number = _as_integer(value, digits_ok)
    if number is None or not lowest <= number <= highest:
        raise ConfigError(
            field, value, f"{label} must be a whole number of {unit} from {lowest} to {highest}; got {_show(value)} ({_kind(value)})"
        )
    return number


def _one_of(field: str, value: Any, allowed: tuple[int, ...], unit: str, context: str = "") -> int:
    number = _as_integer(value, digits_ok=True)
    if number not in allowed:
        raise ConfigError(
            field,
            value,
            f"{field} must be a Fargate {unit} value{context}, one of {', '.join(map(str, allowed))}; got {_show(value)} ({_kind(value)})",
        )
    return number


def _region(field: str, value: Any, services: tuple[str, ...], label: str | None = None) -> str:
    label = label or field
    if not isinstance(value, str):
        raise ConfigError(field, value, f"{label} must be a region name such as 'us-east-1'; got {_show(value)} ({_kind(value)})")
    try:
        validate_region(value, services)
    except UnsupportedRegion as reason:
        raise ConfigError(field, value, f"{label} {value!r} {reason}") from None
    return value


def _results_store(value: Any) -> str:
    if not isinstance(value, str) or value not in RESULTS_STORES:
        raise ConfigError(
            "results_store", value, f"results_store must be one of {', '.join(RESULTS_STORES)}; got {_show(value)}"
        )
    return value


def _home_region(field: str, value: Any, results_store: str) -> str:
    region = _region(field, value, HOME_REGION_SERVICES)
    if results_store == "timestream" and region not in TIMESTREAM_LIVEANALYTICS_REGIONS:
        raise ConfigError(
            field,
            value,
            f"{field} {region!r} has no Timestream for LiveAnalytics, the results store chosen; use one of "
            f"{', '.join(TIMESTREAM_LIVEANALYTICS_REGIONS)} as home region, or set results_store to s3",
        )
    return region


def _remote_regions(field: str, value: Any, digits_ok: bool) -> tuple[Mapping[str, int], Mapping[str, Mapping[str, Any]]]:
    """Each region's (peak) VUs, and the shapes of the regions given one (see :func:`_region_load`)."""
    if digits_ok and isinstance(value, str):
        # A native setting given as text: -e on the command line, an AWX survey's textarea.
        try:
            value = json.loads(value, object_pairs_hook=_object_without_duplicates)
        except _DuplicateKey as error:
            raise ConfigError(field, value, f"{field} names the region {error.key!r} twice; got {_show(value)}") from None
        except ValueError as error:
            raise ConfigError(
                field, value, f"{field} must be a JSON object of region names to VU counts, like {{\"us-east-2\": 50}}; "
                f"got {_show(value)}, which is not JSON ({error}; {KEY_VALUE_HINT})"
            ) from None
    if not isinstance(value, Mapping):
        raise ConfigError(
            field, value, f"{field} must map region names to VU counts, like {{\"us-east-2\": 50}}; got {_show(value)} ({_kind(value)})"
        )
    if not value:
        raise ConfigError(field, value, f"{field} must name at least one region; got {_show(value)}")
    counts, shapes = {}, {}
    for region, load in value.items():
        _region(field, region, REMOTE_REGION_SERVICES, label=f"{field} key")
        counts[region], shape = _region_load(field, f"{field}[{region!r}]", load, digits_ok)
        if shape is not None:
            shapes[region] = shape
    return types.MappingProxyType(dict(sorted(counts.items()))), types.MappingProxyType(dict(sorted(shapes.items())))


def _region_load(field: str, label: str, load: Any, digits_ok: bool) -> tuple[int, Mapping[str, Any] | None]:
    """A region's VUs and shape: a number (constant VUs, no shape), or an object: ``{"vus": N}``, or
    ``{"stages": [{"duration": "2m", "target": 300}, ...]}`` (k6 ramping-vus stages from 0 VUs), either with an
    optional ``"start_after": "90s"`` (the region joins that long after the common start). A shape is None for
    constant VUs from the start."""
    if not isinstance(load, Mapping):
        return _integer(field, load, VUS_PER_REGION_RANGE, "VUs", label=label, digits_ok=digits_ok), None
    unknown = [name for name in load if name not in REGION_FIELDS]
    if unknown:
        raise ConfigError(
            field, load,
            f"{label} has an unknown field {unknown[0]!r}: a region is a VU count, {{\"vus\": N}} or {{\"stages\": [{{\"duration\":"
            f' "1m", "target": N}}, ...]}}, with an optional "start_after": "90s"{_suggestion(str(unknown[0]), REGION_FIELDS)}',
        )
    if ("vus" in load) == ("stages" in load):
        raise ConfigError(
            field, load,
            f'{label} must have either "vus" (constant VUs) or "stages" (a k6 ramping-vus shape), not {"both" if load else "neither"};'
            f" got {_show(dict(load))}",
        )
    start_after = _k6_duration(field, load.get("start_after", "0s"), f"{label}.start_after")
    if "vus" in load:
        vus = _integer(field, load["vus"], VUS_PER_REGION_RANGE, "VUs", label=f"{label}.vus", digits_ok=digits_ok)
        return vus, ({"start_after_ms": start_after, "stages": None} if start_after else None)
    stages = _stages(field, f"{label}.stages", load["stages"], digits_ok)
    return max(target for _duration, target in stages), {"start_after_ms": start_after, "stages": stages}


def _stages(field: str, label: str, stages: Any, digits_ok: bool) -> tuple[tuple[int, int], ...]:
    """k6 ramping-vus stages checked, as (duration ms, target VUs) pairs."""
    if not isinstance(stages, (list, tuple)) or not stages or len(stages) > MAX_STAGES:
        raise ConfigError(
            field, stages,
            f'{label} must be a list of 1 to {MAX_STAGES} stages such as {{"duration": "2m", "target": 300}}; got {_show(stages)} ({_kind(stages)})',
        )
    checked = []
    for index, stage in enumerate(stages):
        where = f"{label}[{index}]"
        if not isinstance(stage, Mapping) or sorted(stage) != sorted(STAGE_FIELDS):
            raise ConfigError(
                field, stage, f'{where} must be {{"duration": "<k6 duration>", "target": <VUs>}} and nothing else; got {_show(stage)}'
            )
        duration = _k6_duration(field, stage["duration"], f"{where}.duration")
        target = _integer(field, stage["target"], (0, VUS_PER_REGION_RANGE[1]), "VUs", label=f"{where}.target", digits_ok=digits_ok)
        checked.append((duration, target))
    if not any(target for _duration, target in checked):
        raise ConfigError(field, stages, f"{label}: every target is 0, so the region would run no VU; got {_show(stages)}")
    if sum(duration for duration, _target in checked) < DURATION_MS_RANGE[0]:
        raise ConfigError(field, stages, f"{label} must last at least {DURATION_MS_RANGE[0]} ms in all; got {_show(stages)}")
    return tuple(checked)


def _k6_duration(field: str, value: Any, label: str) -> int:
    """A k6 duration such as "90s", "2m" or "1h30m" in ms (0 allowed), at most a day."""
    try:
        milliseconds = k6_duration_ms(value) if isinstance(value, str) and value.strip() else None
    except ValueError:
        milliseconds = None
    if milliseconds is None or milliseconds > DURATION_MS_RANGE[1]:
        raise ConfigError(
            field, value,
            f"{label} must be a k6 duration such as \"90s\", \"2m\" or \"1h30m\" (at most a day); got {_show(value)} ({_kind(value)})",
        )
    return milliseconds


def _capacity(value: Any) -> str:
    if value not in CAPACITIES:
        raise ConfigError(
            "capacity", value, f"capacity must be one of {', '.join(CAPACITIES)}; got {_show(value)}{_suggestion(str(value), CAPACITIES)}"
        )
    return value


def _deployment(value: Any) -> str:
    if not isinstance(value, str) or len(value) > DEPLOYMENT_MAX_LENGTH or not _DEPLOYMENT_PATTERN.fullmatch(value):
        raise ConfigError(
            "deployment",
            value,
            f"deployment {_show(value)} is not a valid name: it prefixes S3 bucket names, so it must be 1 to "
            f"{DEPLOYMENT_MAX_LENGTH} lowercase letters, digits and hyphens, start with a letter and not end with a hyphen",
        )
    return value


def _task_size(cpu_value: Any, memory_value: Any) -> tuple[int, int]:
    cpu = _one_of("task_cpu", cpu_value, tuple(FARGATE_MEMORY_BY_CPU), "CPU units")
    memory = _one_of("task_memory", memory_value, FARGATE_MEMORY_BY_CPU[cpu], "memory (MiB)", context=f" with task_cpu {cpu}")
    return cpu, memory


# --- putting it together ----------------------------------------------------------------------


class _Given(NamedTuple):
    """A field's value and where it came from (the file key or the native setting name)."""

    field: str
    value: Any
    from_file: bool


def _required(document: Mapping[str, Any], native: Mapping[str, Any], file_key: str, path: str | None) -> _Given:
    """The value of a field the file and a native setting share; it must be in one of them."""
    native_name = _SHARED_FIELDS[file_key]
    if file_key in document:
        return _Given(file_key, document[file_key], True)
    if native_name in native:
        return _Given(native_name, native[native_name], False)
    if path is None:
        message = f"{native_name} is required (or give a config file with {file_key})"
    else:
        message = f"{file_key} is missing from the config file {path!r}; add it, or set {native_name}"
    raise ConfigError(file_key if path else native_name, None, message)


def _duration_ms(document: Mapping[str, Any], native: Mapping[str, Any], path: str | None) -> int:
    duration = _required(document, native, "DURATION", path)
    if duration.from_file:
        return _integer(duration.field, duration.value, DURATION_MS_RANGE, "milliseconds")
    return 1000 * _integer(duration.field, duration.value, DURATION_SECONDS_RANGE, "seconds", digits_ok=True)


def load_config(path: str | os.PathLike | None = None, settings: Mapping[str, Any] | None = None) -> Config:
    """Validate a config file and/or native settings (None values count as not given)."""
    native = {name: value for name, value in (settings or {}).items() if value is not None}
    _check_native_names(native)
    document = read_config_file(path) if path is not None else {}
    shown_path = os.fspath(path) if path is not None else None
    _check_file_keys(document, shown_path)
    _check_not_both_given(document, native, shown_path)

    results_store = _results_store(native.get("results_store", DEFAULT_RESULTS_STORE))
    home = _required(document, native, "HOME_REGION", shown_path)
    remotes = _required(document, native, "REMOTE_REGIONS", shown_path)
    task_cpu, task_memory = _task_size(native.get("task_cpu", DEFAULT_TASK_CPU), native.get("task_memory", DEFAULT_TASK_MEMORY))
    remote_regions, shapes = _remote_regions(remotes.field, remotes.value, digits_ok=not remotes.from_file)
    config = Config(
        home_region=_home_region(home.field, home.value, results_store),
        remote_regions=remote_regions,
        shapes=shapes,
        duration_ms=_duration_ms(document, native, shown_path),
        results_store=results_store,
        max_vus_per_task=_integer(
            "max_vus_per_task", native.get("max_vus_per_task", DEFAULT_MAX_VUS_PER_TASK), MAX_VUS_PER_TASK_RANGE, "VUs", digits_ok=True
        ),
        deployment=_deployment(native.get("deployment", DEFAULT_DEPLOYMENT)),
        task_cpu=task_cpu,
        task_memory=task_memory,
        start_lead_seconds=_integer(
            "start_lead_seconds", native.get("start_lead_seconds", DEFAULT_START_LEAD_SECONDS), START_LEAD_SECONDS_RANGE,
            "seconds", digits_ok=True,
        ),
        start_timeout_seconds=_integer(
            "start_timeout_seconds", native.get("start_timeout_seconds", DEFAULT_START_TIMEOUT_SECONDS),
            START_TIMEOUT_SECONDS_RANGE, "seconds", digits_ok=True,
        ),
        capacity=_capacity(native.get("capacity", DEFAULT_CAPACITY)),
        spot_percent=_integer(
            "spot_percent", native.get("spot_percent", DEFAULT_SPOT_PERCENT), SPOT_PERCENT_RANGE, "percent", digits_ok=True
        ),
    )
    _check_task_limits(config, remotes.field)
    longest = max(region_duration_ms(config, region) for region in config.remote_regions)
    if longest > DURATION_MS_RANGE[1]:
        raise ConfigError(
            remotes.field, longest, f"{remotes.field}: the longest region would run {longest} ms, over a day ({DURATION_MS_RANGE[1]} ms)"
        )
    return config


def _check_task_limits(config: Config, field: str) -> None:
    """Refuse a plan with more tasks than the largest tested, naming the region or the total and the limit."""
    tasks = {region: -(-vus // config.max_vus_per_task) for region, vus in config.remote_regions.items()}
    hint = f"raise max_vus_per_task (now {config.max_vus_per_task}) to run more VUs per task"
    for region, count in sorted(tasks.items()):
        if count > MAX_TASKS_PER_REGION:
            raise ConfigError(
                field, config.remote_regions[region],
                f"{field}.{region}: {config.remote_regions[region]} VUs make {count} tasks, over the {MAX_TASKS_PER_REGION}"
                f" per region this collection is tested with (each task's RunTask overrides name every task of its"
                f" region, and ECS allows 8,192 characters); {hint}",
            )
    total = sum(tasks.values())
    if total > MAX_TASKS_PER_RUN:
        raise ConfigError(
            field, total,
            f"{field}: the plan makes {total} tasks in all, over the {MAX_TASKS_PER_RUN} per run this collection is"
            f" tested with (the run's state is one DynamoDB item of at most 400 KB); {hint}",
        )


# --- the run plan -----------------------------------------------------------------------------

# Fargate Linux/x86 on-demand list prices in us-east-1; other regions cost up to ~30% more.
FARGATE_USD_PER_VCPU_HOUR = 0.04048
FARGATE_USD_PER_GB_HOUR = 0.004445
# Fargate Spot: assumed 70 % below on demand (its prices vary by region and over time).
FARGATE_SPOT_USD_PER_VCPU_HOUR = 0.012144
FARGATE_SPOT_USD_PER_GB_HOUR = 0.0013335
FARGATE_MINIMUM_BILLED_SECONDS = 60
TASK_OVERHEAD_SECONDS = 180  # start lead time, image pull and shutdown, billed but not testing
RESULTS_INTERVAL_SECONDS = 5  # one aggregated record per request name per interval
REQUEST_NAMES_ASSUMED = 5
TIMESTREAM_USD_PER_MILLION_WRITES = 0.50  # 1 KB writes
S3_USD_PER_THOUSAND_PUTS = 0.005


def split_vus(vus: int, max_vus_per_task: int) -> list[int]:
    """VUs per task: ceil(vus / max) tasks; the first vus % tasks of them run one VU more."""
    tasks = -(-vus // max_vus_per_task)
    base, extra = divmod(vus, tasks)
    return [base + 1 if index < extra else base for index in range(tasks)]


def _segment_point(index: int, tasks: int) -> str:
    if index == 0:
        return "0"
    if index == tasks:
        return "1"
    return f"{index}/{tasks}"


def execution_segments(tasks: int) -> list[str]:
    """The k6 --execution-segment of each of tasks equal segments: "0:1/4", "1/4:2/4", ..."""
    return [f"{_segment_point(index, tasks)}:{_segment_point(index + 1, tasks)}" for index in range(tasks)]


def execution_segment_sequence(tasks: int) -> str:
    """The k6 --execution-segment-sequence shared by every task: "0,1/4,2/4,3/4,1"."""
    return ",".join(_segment_point(index, tasks) for index in range(tasks + 1))


def script_load_segments(config: Config) -> dict[str, Any]:
    """The k6 execution segments of the ``script`` load model: one sequence for the whole test.

    In that model the script's own ``options.scenarios`` is the load of the whole test, so every
    task of every region runs one segment of ONE execution-segment sequence. A region's share
    is its REMOTE_REGIONS value (here a weight) over the sum of all values, split evenly over
    its tasks (as many as the plan gives it). Regions are laid out in the plan's order.

    ``exact_vus_multiple`` is the least common denominator of the sequence. k6 divides the
    iterations of an arrival-rate scenario by its ``maxVUs`` (``preAllocatedVUs`` when not
    set) re-segmented over the sequence, so the split follows the weights exactly only when
    that VU count is a multiple of this number; otherwise each task's iterations follow its
    integer share of the VUs.
    """
    weights = dict(sorted(config.remote_regions.items()))
    total = sum(weights.values())
    tasks = {region: len(split_vus(weight, config.max_vus_per_task)) for region, weight in weights.items()}
    points = [Fraction(0)]
    for region, weight in weights.items():
        region_start, task_share = points[-1], Fraction(weight, total * tasks[region])
        points.extend(region_start + task_share * task for task in range(1, tasks[region] + 1))
    regions = {}
    first = 0
    for region in weights:
        ends = points[first : first + tasks[region] + 1]
        regions[region] = {
            "tasks": tasks[region],
            "share": str(ends[-1] - ends[0]),
            "execution_segments": [f"{start}:{end}" for start, end in zip(ends, ends[1:])],
        }
        first += tasks[region]
    return {
        "execution_segment_sequence": ",".join(map(str, points)),
        "regions": regions,
        "exact_vus_multiple": math.lcm(*(point.denominator for point in points)),
    }


def region_duration_ms(config: Config, region: str) -> int:
    """How long ``region`` runs load from the common start: its start_after and its stages, or DURATION."""
    shape = config.shapes.get(region)
    if shape is None:
        return config.duration_ms
    length = sum(duration for duration, _target in shape["stages"]) if shape["stages"] else config.duration_ms
    return shape["start_after_ms"] + length


def k6_stages(config: Config, region: str) -> list[list[int]] | None:
    """The k6 ramping-vus stages (duration ms, target) every task of ``region`` runs from the common start (k6 scales
    each target to the task's execution segment), the start_after as a first stage of 0 VUs; None for constant VUs
    from the start (k6's --vus and --duration)."""
    shape = config.shapes.get(region)
    if shape is None:
        return None
    offset = [[shape["start_after_ms"], 0]] if shape["start_after_ms"] else []
    if shape["stages"]:
        return offset + [list(stage) for stage in shape["stages"]]
    vus = config.remote_regions[region]
    return offset + [[0, vus], [config.duration_ms, vus]]


def planned_vus(stages: list[list[int]] | None, vus: int, duration_ms: int) -> list[list[int]]:
    """The region's planned VUs over time from the common start: (ms, VUs) points joined by straight lines."""
    if stages is None:
        return [[0, vus], [duration_ms, vus]]
    points, at = [[0, 0]], 0
    for duration, target in stages:
        at += duration
        points.append([at, target])
    return points


def _region_plan(region: str, config: Config) -> dict[str, Any]:
    vus = config.remote_regions[region]
    vus_per_task = split_vus(vus, config.max_vus_per_task)
    tasks = len(vus_per_task)
    shape = config.shapes.get(region)
    stages = k6_stages(config, region)
    duration = region_duration_ms(config, region)
    return {
        "vus": vus,
        "tasks": tasks,
        "vus_per_task": vus_per_task,
        "execution_segments": execution_segments(tasks),
        "execution_segment_sequence": execution_segment_sequence(tasks),
        "vcpus": tasks * config.task_cpu / 1024,
        "memory_gib": tasks * config.task_memory / 1024,
        "duration_ms": duration,
        "start_after_ms": shape["start_after_ms"] if shape else 0,
        "stages": stages,
        "planned_vus": planned_vus(stages, vus, duration),
        "description": _describe_region(vus, tasks, shape, duration),
        "spot_tasks": spot_tasks(config, tasks),
    }


def spot_tasks(config: Config, tasks: int) -> int:
    """How many of a region's ``tasks`` run on Fargate Spot: its last ones (task indexes ``tasks - n`` on)."""
    if config.capacity == "fargate_spot":
        return tasks
    if config.capacity == "mixed":
        return tasks * config.spot_percent // 100
    return 0


def _describe_region(vus: int, tasks: int, shape: Mapping[str, Any] | None, duration_ms: int) -> str:
    """The region's plan in a line: its VUs, tasks and when it runs load."""
    start = shape["start_after_ms"] if shape else 0
    kind = "in stages, at the peak" if shape and shape["stages"] else "constant"
    return f"{vus} VUs ({kind}) in {tasks} task{'s' if tasks != 1 else ''}, from {start / 1000:g} s to {duration_ms / 1000:g} s"


def estimate_cost(config: Config, regions: Mapping[str, tuple[int, int, int]]) -> dict[str, Any]:
    """A rough USD estimate for one test run, with its assumptions spelled out.

    ``regions`` is each region's tasks, how long they run load (ms) and how many of them run on Fargate
    Spot: a region that joins later or ends sooner bills its own length. The Fargate cost is given for
    the capacity chosen (``fargate_usd``), all on demand and all on Spot. ``billed_seconds_per_task`` is
    the longest region's."""
    tasks = sum(count for count, _duration, _spot in regions.values())
    billed = {
        region: max(FARGATE_MINIMUM_BILLED_SECONDS, math.ceil(duration / 1000) + TASK_OVERHEAD_SECONDS)
        for region, (_count, duration, _spot) in regions.items()
    }
    task_seconds = sum(count * billed[region] for region, (count, _duration, _spot) in regions.items())
    spot_seconds = sum(spot * billed[region] for region, (_count, _duration, spot) in regions.items())
    on_demand_hour = config.task_cpu / 1024 * FARGATE_USD_PER_VCPU_HOUR + config.task_memory / 1024 * FARGATE_USD_PER_GB_HOUR
    spot_hour = config.task_cpu / 1024 * FARGATE_SPOT_USD_PER_VCPU_HOUR + config.task_memory / 1024 * FARGATE_SPOT_USD_PER_GB_HOUR
    fargate = ((task_seconds - spot_seconds) * on_demand_hour + spot_seconds * spot_hour) / 3600
    task_intervals = sum(count * math.ceil(duration / (RESULTS_INTERVAL_SECONDS * 1000)) for count, duration, _spot in regions.values())
    if config.results_store == "timestream":
        # A record per request name and one of the task's own (VUs, iterations) per interval.
        requests = task_intervals * (REQUEST_NAMES_ASSUMED + 1)
        results_store = requests * TIMESTREAM_USD_PER_MILLION_WRITES / 1_000_000
        store_assumption = (
            f"Timestream: {requests} record writes ({task_intervals} task intervals of {RESULTS_INTERVAL_SECONDS} s x "
            f"({REQUEST_NAMES_ASSUMED} request names + the task's own)) at ${TIMESTREAM_USD_PER_MILLION_WRITES:.2f} per million 1 KB writes"
        )
    else:
        requests = task_intervals
        results_store = requests * S3_USD_PER_THOUSAND_PUTS / 1000
        store_assumption = (
            f"S3: {requests} PUTs ({task_intervals} task intervals of {RESULTS_INTERVAL_SECONDS} s) "
            f"at ${S3_USD_PER_THOUSAND_PUTS} per 1,000"
        )
    longest = max(billed.values())
    assumptions = (
        f"us-east-1 list prices; other regions cost more. Fargate Linux/x86 on-demand at "
        f"${FARGATE_USD_PER_VCPU_HOUR} per vCPU-hour and ${FARGATE_USD_PER_GB_HOUR} per GB-hour, billed per second "
        f"with a {FARGATE_MINIMUM_BILLED_SECONDS} s minimum: {tasks} tasks, {task_seconds} task-seconds in all (each task its "
        f"region's test length + {TASK_OVERHEAD_SECONDS} s allowance for start lead time and image pull; at most {longest} s); "
        f"Fargate Spot assumed at ${FARGATE_SPOT_USD_PER_VCPU_HOUR} per vCPU-hour and ${FARGATE_SPOT_USD_PER_GB_HOUR} per GB-hour "
        f"(70 % off; Spot prices vary), {spot_seconds} of the task-seconds on Spot ({config.capacity}). "
        f"{store_assumption}. Lambda, DynamoDB, CloudWatch Logs and data transfer are left out as negligible."
    )
    return {
        "total_usd": round(fargate + results_store, 4),
        "fargate_usd": round(fargate, 4),
        "fargate_on_demand_usd": round(task_seconds * on_demand_hour / 3600, 4),
        "fargate_spot_usd": round(task_seconds * spot_hour / 3600, 4),
        "capacity": config.capacity,
        "results_store_usd": round(results_store, 4),
        "billed_seconds_per_task": longest,
        "task_seconds": task_seconds,
        "results_store_requests": requests,
        "assumptions": assumptions,
    }


def plan(config: Config) -> dict[str, Any]:
    """What a run of config deploys: tasks, VUs, shape and k6 segments per remote region, totals, cost.

    ``duration_ms`` is the run's: its longest region's, start_after included."""
    remote_regions = {region: _region_plan(region, config) for region in sorted(config.remote_regions)}
    tasks = sum(region["tasks"] for region in remote_regions.values())
    return {
        "home_region": config.home_region,
        "duration_ms": max(region["duration_ms"] for region in remote_regions.values()),
        "regions": sorted({config.home_region, *config.remote_regions}),
        "remote_regions": remote_regions,
        "tasks_by_region": {region: planned["tasks"] for region, planned in remote_regions.items()},
        "totals": {
            "vus": sum(region["vus"] for region in remote_regions.values()),
            "tasks": tasks,
            "vcpus": tasks * config.task_cpu / 1024,
            "memory_gib": tasks * config.task_memory / 1024,
        },
        "cost_estimate": estimate_cost(
            config, {region: (p["tasks"], p["duration_ms"], p["spot_tasks"]) for region, p in remote_regions.items()}
        ),
    }
