#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: k6_archive
version_added: 0.1.0
short_description: Pack a k6 test into one archive, check it as the tasks will run it, keep it under its run
description:
  - Turns O(script) into a k6 archive at O(dest) with C(k6 archive) on the controller, the script with every
    local module it imports, every file it opens and its options, so that the tasks run exactly what was
    checked here. A C(.tar) that C(k6 archive) made already is taken as it is.
  - Checks the archive as every task will run it, with the script's environment and the load model's flags
    (C(k6 archive) with C(--vus) and C(--duration) for the V(vus) model, then
    C(k6 inspect --execution-requirements)). A script k6 would refuse at run time (no default function, an
    unknown executor, an import that does not resolve, a file it cannot open) is refused here with k6's message.
  - The archive a k6 packs is rewritten with fixed times and order, so the same test gives the same
    RV(sha256).
  - With O(bucket), uploads the archive to the run's key in the home bucket with its SHA-256 as metadata. The
    test of a run is never replaced. The same archive again changes nothing, and a different one is refused,
    naming both hashes.
author:
  - Constellation maintainers (@constellation-loadtest)
options:
  script:
    description:
      - The k6 script (its modules and data files are found from its directory, as k6 finds them), or a
        C(.tar) made by C(k6 archive).
    required: true
    type: path
  dest:
    description:
      - Where to write the archive on the controller. Parent directories are created.
      - Unset, the archive is built in a temporary directory and removed after the upload.
    type: path
  k6_binary:
    description: The k6 executable, a name looked up on the PATH or a path.
    type: str
    default: k6
  script_env:
    description:
      - The script's environment (C(__ENV)), NAME to text, as every task passes it to k6. Names are checked as
        C(constellation_script_env).
    type: raw
    default: {}
  load_model:
    description: How the tasks set the load, V(vus) (k6 flags C(--vus) and C(--duration)) or V(script) (its own).
    type: str
    choices: [vus, script]
    default: vus
  duration_ms:
    description: The test's duration, as the V(vus) model passes it to k6.
    type: int
    default: 60000
  bucket:
    description: The home bucket to keep the archive in, under the run. Unset, nothing is uploaded.
    type: str
  run_id:
    description: The run whose test this is. Required with O(bucket).
    type: str
notes:
  - Supports check mode. The archive is built and checked, nothing is uploaded.
  - Needs C(s3:GetObject) (its metadata) and C(s3:PutObject) on the run's key when O(bucket) is set.
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Pack, check and keep the test of run nightly-42
  constellation.loadtest.k6_archive:
    script: tests/checkout.js
    dest: /tmp/nightly-42.tar
    script_env: {BASE_URL: "https://shop.example.com"}
    duration_ms: 300000
    bucket: constellation-123456789012-eu-central-1
    run_id: nightly-42
  register: test

- name: Its hash, which every task checks before k6 runs it
  ansible.builtin.debug:
    msg: "{{ test.sha256 }}"
"""

RETURN = r"""
path:
  description: The archive on the controller.
  returned: when O(dest) is set
  type: str
  sample: /tmp/nightly-42.tar
sha256:
  description: The SHA-256 of the archive, hex.
  returned: always
  type: str
  sample: a5698a21ff47c091f7712b90103080fd7d44591c52e7bc61f41eb8f79bc185ed
size:
  description: The size of the archive in bytes.
  returned: always
  type: int
  sample: 4096
key:
  description: The archive's key in O(bucket).
  returned: when O(bucket) is set
  type: str
  sample: runs/nightly-42/test.tar
options:
  description: The test's options as C(k6 inspect --execution-requirements) reports them (thresholds included).
  returned: always
  type: dict
"""

import json
import os
import shutil
import tempfile

try:
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError
except ImportError:
    pass  # Handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.constellation.loadtest.plugins.module_utils.aws.modules import ConstellationAWSModule
from ansible_collections.constellation.loadtest.plugins.module_utils.results.progress import ProgressError
from ansible_collections.constellation.loadtest.plugins.module_utils.results.progress import script_key
from ansible_collections.constellation.loadtest.plugins.module_utils.run import k6
from ansible_collections.constellation.loadtest.plugins.module_utils.run.task_contract import ContractError
from ansible_collections.constellation.loadtest.plugins.module_utils.run.task_contract import k6_env_arguments
from ansible_collections.constellation.loadtest.plugins.module_utils.run.task_contract import script_environment

SHA256_METADATA = "sha256"


def build(module, binary, env_arguments, dest):
    """The archive at ``dest``, checked; its options as k6 reports them."""
    params = module.params
    script = params["script"]
    if not os.path.isfile(script):
        raise k6.K6Error(f"script {json.dumps(script)}: no such file")
    os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
    if k6.is_archive(script):
        if os.path.abspath(script) != os.path.abspath(dest):
            shutil.copyfile(script, dest)
    else:
        k6.pack(module.run_command, binary, script, dest, env_arguments)
        k6.normalize(dest)
    model = k6.load_model_arguments(params["load_model"], 1, params["duration_ms"])
    with tempfile.TemporaryDirectory(prefix="constellation-k6-") as scratch:
        # What a task's `k6 run` adds to the archive's options, checked by k6 as it would at run time.
        k6.pack(module.run_command, binary, dest, os.path.join(scratch, "as-run.tar"), env_arguments + model)
    report = k6.check(module.run_command, binary, dest, env_arguments, script)
    try:
        return json.loads(report)
    except ValueError:
        return {}


def keep(module, s3, key, path, sha256):
    """Upload the archive unless the run has it; refuse a different one. Whether it was uploaded."""
    bucket = module.params["bucket"]
    try:
        existing = s3.head_object(Bucket=bucket, Key=key, aws_retry=True)
    except is_boto3_error_code(["404", "NoSuchKey", "NotFound"]):
        existing = None
    if existing is not None:
        kept = existing.get("Metadata", {}).get(SHA256_METADATA, "unknown")
        if kept != sha256:
            raise k6.K6Error(
                f"run {module.params['run_id']} already has a different test: s3://{bucket}/{key} has sha256 {kept}, "
                f"this script gives {sha256}. A run's test is never replaced: run it under a new constellation_run_id."
            )
        return False
    if not module.check_mode:
        with open(path, "rb") as archive:
            s3.put_object(Bucket=bucket, Key=key, Body=archive, Metadata={SHA256_METADATA: sha256}, aws_retry=True)
    return True


def main():
    module = ConstellationAWSModule(
        argument_spec=dict(
            script=dict(type="path", required=True),
            dest=dict(type="path"),
            k6_binary=dict(type="str", default="k6"),
            script_env=dict(type="raw", default={}),
            load_model=dict(type="str", choices=["vus", "script"], default="vus"),
            duration_ms=dict(type="int", default=60000),
            bucket=dict(type="str"),
            run_id=dict(type="str"),
        ),
        required_by=dict(bucket=["run_id"]),
        supports_check_mode=True,
    )
    params = module.params
    result = {"changed": False}
    try:
        env_arguments = k6_env_arguments(script_environment(params["script_env"]))
        key = script_key(params["run_id"]) if params["bucket"] else None
        binary = k6.find_k6(params["k6_binary"])
        with tempfile.TemporaryDirectory(prefix="constellation-test-") as scratch:
            dest = params["dest"] or os.path.join(scratch, "test.tar")
            options = build(module, binary, env_arguments, dest)
            sha256 = k6.sha256_of(dest)
            result.update(sha256=sha256, size=os.path.getsize(dest), options=options)
            if params["dest"]:
                result["path"] = dest
            if key:
                s3 = module.client("s3", retry_decorator=AWSRetry.jittered_backoff())
                result.update(key=key, changed=keep(module, s3, key, dest, sha256))
    except (k6.K6Error, ContractError) as error:
        module.fail_json(msg=str(error))
    except ProgressError as error:
        module.fail_json(msg=str(error).replace("run_id", "constellation_run_id", 1))
    except (BotoCoreError, ClientError) as error:
        module.fail_json_aws(error, msg=f"Failed to keep the test of run {params['run_id']} in s3://{params['bucket']}")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
