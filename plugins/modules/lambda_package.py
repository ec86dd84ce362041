#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: lambda_package
short_description: Build a reproducible AWS Lambda deployment package
version_added: 0.1.0
description:
  - Writes a zip file from a list of source files with fixed timestamps and permissions, so the
    same sources always give the same bytes and the same C(CodeSha256).
  - M(amazon.aws.lambda) compares that checksum with the deployed function, so a package built
    from unchanged sources on any machine or fresh clone leaves the function unchanged.
  - The file is rewritten only when its content would differ.
author:
  - Constellation maintainers (@constellation-loadtest)
options:
  dest:
    description: Path of the zip file to write. Parent directories are created.
    type: path
    required: true
  files:
    description: The files to put in the package.
    type: list
    elements: dict
    required: true
    suboptions:
      src:
        description: Path of the source file on the target host.
        type: path
        required: true
      name:
        description: Name of the file inside the package. Defaults to the base name of O(files[].src).
        type: str
notes:
  - Supports check mode; in check mode the package is built in memory only and nothing is written.
"""

EXAMPLES = r"""
- name: Package the orchestrator with the state logic it imports
  constellation.loadtest.lambda_package:
    dest: ~/.cache/constellation.loadtest/orchestrator.zip
    files:
      - src: "{{ collection_root }}/files/lambda/orchestrator.py"
      - src: "{{ collection_root }}/plugins/module_utils/run/__init__.py"
        name: run/__init__.py
      - src: "{{ collection_root }}/plugins/module_utils/run/orchestrator_state.py"
        name: run/orchestrator_state.py
"""

RETURN = r"""
path:
  description: Path of the package.
  returned: always
  type: str
  sample: /root/.cache/constellation.loadtest/orchestrator.zip
sha256:
  description: Base64 SHA-256 of the package, in the form AWS Lambda reports as C(CodeSha256).
  returned: always
  type: str
  sample: 3x0CBkpKDWx1MMk1H5WrgQn0wCC1pVn0R0ZKFz8Kbx0=
"""

import base64
import hashlib
import io
import os
import zipfile

from ansible.module_utils.basic import AnsibleModule

# Every entry gets the same timestamp and mode: zip bytes then depend only on names and contents.
FIXED_TIMESTAMP = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644


def build_package(files):
    """Return the zip bytes for [(name, content)], sorted by name."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in sorted(files):
            entry = zipfile.ZipInfo(name, date_time=FIXED_TIMESTAMP)
            entry.external_attr = FILE_MODE << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, content)
    return buffer.getvalue()


def read_sources(module):
    sources = []
    for item in module.params["files"]:
        name = item["name"] or os.path.basename(item["src"])
        try:
            with open(item["src"], "rb") as source:
                sources.append((name, source.read()))
        except OSError as error:
            module.fail_json(msg=f"Cannot read package source files[].src={item['src']!r}: {error.strerror}")
    return sources


def current_content(path):
    try:
        with open(path, "rb") as existing:
            return existing.read()
    except FileNotFoundError:
        return None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            dest=dict(type="path", required=True),
            files=dict(
                type="list",
                elements="dict",
                required=True,
                options=dict(src=dict(type="path", required=True), name=dict(type="str")),
            ),
        ),
        supports_check_mode=True,
    )
    dest = module.params["dest"]
    package = build_package(read_sources(module))
    changed = current_content(dest) != package
    if changed and not module.check_mode:
        os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
        with open(dest, "wb") as output:
            output.write(package)
    sha256 = base64.b64encode(hashlib.sha256(package).digest()).decode("ascii")
    module.exit_json(changed=changed, path=dest, sha256=sha256)


if __name__ == "__main__":
    main()
