#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: script_secrets_info
version_added: 0.1.0
short_description: Check that the script's secrets exist, without reading them
description:
  - Checks every secret of O(secrets) (C(NAME) to the ARN of an SSM parameter or a Secrets Manager secret, as
    C(constellation_script_secrets) takes them) with C(ssm:DescribeParameters) or C(secretsmanager:DescribeSecret)
    in the secret's region. Neither returns a value.
  - Fails before anything is deployed when one is missing or cannot be described, naming it and its ARN.
author:
  - Constellation maintainers (@constellation-loadtest)
options:
  secrets:
    description: The secrets, C(NAME) to ARN (a mapping, or a JSON object as text).
    required: true
    type: raw
notes:
  - Supports check mode.
  - Needs C(ssm:DescribeParameters) and C(secretsmanager:DescribeSecret). O(region) is not used, each secret is
    looked up in the region of its ARN.
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Refuse a run whose secrets are missing
  constellation.loadtest.script_secrets_info:
    secrets:
      API_TOKEN: arn:aws:ssm:eu-central-1:123456789012:parameter/shop/api-token
      DB_PASSWORD: "arn:aws:secretsmanager:eu-central-1:123456789012:secret:shop-db-AbCdEf:password::"
"""

RETURN = r"""
secrets:
  description: Each secret, by name, with its ARN, service and, for a parameter, its type.
  returned: always
  type: dict
  sample: {"API_TOKEN": {"arn": "arn:aws:ssm:eu-central-1:123456789012:parameter/shop/api-token", "service": "ssm",
                         "type": "SecureString"}}
"""

try:
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError
except ImportError:
    pass  # Handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.constellation.loadtest.plugins.module_utils.aws.modules import ConstellationAWSModule
from ansible_collections.constellation.loadtest.plugins.module_utils.run.task_contract import ContractError
from ansible_collections.constellation.loadtest.plugins.module_utils.run.task_contract import script_secrets


def describe(module, secret):
    """What AWS says of the secret (no value), or None when it does not exist."""
    client = module.client(secret.service, region=secret.region, retry_decorator=AWSRetry.jittered_backoff())
    if secret.service == "ssm":
        filters = [{"Key": "Name", "Option": "Equals", "Values": [secret.secret_id]}]
        found = client.describe_parameters(ParameterFilters=filters, aws_retry=True).get("Parameters", [])
        return {"type": found[0].get("Type")} if found else None
    try:
        client.describe_secret(SecretId=secret.secret_id, aws_retry=True)
    except is_boto3_error_code("ResourceNotFoundException"):
        return None
    return {}


def main():
    module = ConstellationAWSModule(argument_spec=dict(secrets=dict(type="raw", required=True, no_log=False)), supports_check_mode=True)
    try:
        secrets = script_secrets(module.params["secrets"])
    except ContractError as error:
        module.fail_json(msg=str(error))
    found, missing = {}, []
    for secret in secrets:
        kind = "SSM parameter" if secret.service == "ssm" else "Secrets Manager secret"
        try:
            described = describe(module, secret)
        except (BotoCoreError, ClientError) as error:
            module.fail_json_aws(error, msg=f"constellation_script_secrets: {secret.name}: cannot describe the {kind} {secret.value_from}")
        if described is None:
            missing.append(f"{secret.name} (no {kind} {secret.secret_id} in {secret.region})")
        else:
            found[secret.name] = dict(described, arn=secret.value_from, service=secret.service)
    if missing:
        module.fail_json(msg=f"constellation_script_secrets: not found: {'; '.join(missing)}. Nothing was deployed.")
    module.exit_json(changed=False, secrets=found)


if __name__ == "__main__":
    main()
