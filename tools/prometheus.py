"""A real Prometheus on loopback that takes remote writes, for the live-metrics tests.

Debian's ``prometheus`` package (2.42), started with ``--web.enable-remote-write-receiver`` and
``--enable-feature=native-histograms``: what k6's pushes need, forwarded by our aggregators.
``make podman`` installs it with the other packages the production path needs.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from typing import Optional

from emulator import free_port, wait_until_up

# No scrapes: everything it holds was written to it.
CONFIG = "global:\n  evaluation_interval: 1m\nscrape_configs: []\n"


@contextlib.contextmanager
def prometheus_server(port: Optional[int] = None) -> Iterator[str]:
    """Run Prometheus on 127.0.0.1 for the block; yields its base URL (remote write at ``/api/v1/write``)."""
    binary = shutil.which("prometheus")
    if binary is None:
        raise RuntimeError("prometheus is not installed: make podman installs it (Debian package prometheus)")
    port = port or free_port()
    with tempfile.TemporaryDirectory(prefix="constellation-prometheus-") as workdir:
        config = Path(workdir) / "prometheus.yml"
        config.write_text(CONFIG)
        log = open(Path(workdir) / "prometheus.log", "wb")  # noqa: SIM115 (closed below)
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir}/data",
                f"--web.listen-address=127.0.0.1:{port}",
                "--web.enable-remote-write-receiver",
                "--enable-feature=native-histograms",
                "--storage.tsdb.retention.time=1d",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_up(f"{url}/-/ready", process, "prometheus", timeout=60)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=30)
            log.close()


def query(url: str, expression: str, at: Optional[float] = None) -> list[dict[str, Any]]:
    """The instant vector ``expression`` evaluates to (at epoch seconds ``at``, or now); raises on a bad query."""
    parameters = {"query": expression} | ({"time": f"{at:.3f}"} if at is not None else {})
    with urllib.request.urlopen(f"{url}/api/v1/query?{urllib.parse.urlencode(parameters)}", timeout=30) as answer:
        body = json.load(answer)
    if body.get("status") != "success":
        raise RuntimeError(f"{expression}: {body}")
    result = body["data"]["result"]
    if body["data"]["resultType"] == "scalar":
        return [{"metric": {}, "value": result}]
    return result


def values(url: str, expression: str, by: str, at: Optional[float] = None) -> dict[str, float]:
    """``expression``'s samples by the value of label ``by`` (histogram samples are skipped)."""
    return {sample["metric"].get(by, ""): float(sample["value"][1]) for sample in query(url, expression, at) if "value" in sample}
