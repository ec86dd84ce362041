#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: task_contract
short_description: Compute what every load generator task of a test run gets
version_added: 0.1.0
description:
  - Computes, for each remote region, the two containers of the region's task definition (the load
    generator and its aggregator sidecar, with what is the same for every run) and, for a run, the
    container overrides of every planned task (run id, task index, script location, load model,
    VUs, duration, and the task's k6 execution segment with its sequence).
  - M(constellation.loadtest.fargate_region) registers the task definition with RV(regions.containers)
    and M(constellation.loadtest.ecs_load_tasks) starts task I(i) with the I(i)-th element of
    RV(regions.tasks); whatever runs the tasks reads exactly this.
  - With O(load_model=vus) each region splits its VUs over its own execution-segment sequence. With
    O(load_model=script) the script's scenarios are the load of the whole test, and every task of
    every region runs a segment of one sequence across all regions, weighted by the regions' values.
  - Nothing is created or changed, and no AWS API is called.
author:
  - Constellation maintainers (@constellation-loadtest)
options:
  config:
    description:
      - The validated configuration, as M(constellation.loadtest.plan) returns it in RV(constellation.loadtest.plan#module:config).
    type: dict
    required: true
  home:
    description:
      - The home region's resources the tasks use, by name.
      - Keys C(region), C(results_store) (V(timestream) or V(s3)), C(bucket) (the script and results
        bucket), C(function) (the orchestrator Lambda), and for Timestream C(timestream_database) and
        C(timestream_table). Other keys are ignored.
    type: dict
    required: true
  regions:
    description:
      - The remote regions to compute, a subset of the configuration's. Defaults to all of them.
    type: list
    elements: str
  run_id:
    description:
      - The test run; 1 to 64 letters, digits, hyphens and underscores, starting with a letter or digit.
      - Without it only the task definitions' containers are computed, and RV(regions.tasks) is empty.
    type: str
  load_model:
    description:
      - V(vus) runs each region's VUs for the configured duration; V(script) runs the script's own
        scenarios as the load of the whole test.
    type: str
    choices: [vus, script]
    default: vus
  start_timeout_seconds:
    description:
      - How long a load generator waits for the synchronized start before giving up.
    type: int
    default: 900
  script_env:
    description:
      - "Environment variables for the script, C(NAME: value); every task's k6 sees them as C(__ENV.NAME)."
      - Names are letters, digits and C(_), not starting with a digit; names starting with
        C(CONSTELLATION_), C(AWS_) or C(K6_) are the tasks' own and refused. Values are text (numbers
        are taken as their text).
      - A mapping, or a JSON object as text; empty text means none.
      - They travel in the tasks' overrides, visible to anyone who may describe the tasks; not for secrets.
      - k6 gets them as C(--env) arguments, so they reach the script only, never k6's own environment.
    type: raw
    default: {}
  script_sha256:
    description:
      - The SHA-256 (hex) of the run's test, as M(constellation.loadtest.k6_archive) returns it. Every task
        checks the archive it downloads against it before k6 runs, and fails with exit code 89 on a mismatch.
      - Without it, the tasks' overrides carry no hash and a task launched with them fails at once
        (exit 80). run_test always gives it, and the remote role deploying a region for a run needs none.
    type: str
  script_secrets:
    description:
      - "Secrets for the script, C(NAME: ARN): every task's k6 sees each as C(__ENV.NAME)."
      - The ARN of an SSM parameter (a SecureString) or of a Secrets Manager secret, which may end with
        C(:json-key::) to take one key of a JSON secret, as ECS takes them.
      - They are the load generator container's C(secrets) in the task definition. ECS reads the values when
        a task starts, and the values never pass through Ansible. The task execution role may read exactly these,
        see RV(regions) C(secret_statements).
      - Names follow O(script_env)'s rules, and a name may not be in both.
    type: raw
    default: {}
  secrets_kms_key:
    description: The ARN of the KMS key that encrypts the secrets, when it is not AWS's own; the task execution role may decrypt with it.
    type: str
  prometheus_remote_write_url:
    description:
      - A Prometheus remote-write endpoint every task's aggregator forwards k6's metrics to, live, each
        series labelled C(run_id), C(region) and C(task) (k6's metric names, native histograms kept).
      - An Amazon Managed Service for Prometheus workspace's URL
        (C(https://aps-workspaces.REGION.amazonaws.com/workspaces/ID/api/v1/remote_write)) is signed with
        SigV4 and the task role may C(aps:RemoteWrite) to that workspace only, see RV(regions) C(task_statements).
      - Blank or unset, nothing is forwarded.
    type: str
  prometheus_secret:
    description:
      - The ARN of an SSM parameter or a Secrets Manager secret holding the endpoint's bearer token, or its
        password with O(prometheus_username); ECS reads it when a task starts (the aggregator's C(secrets)).
      - Credentials go only to an C(https://) endpoint (or one on loopback).
    type: str
  prometheus_username:
    description: The user name for basic authentication; the password is O(prometheus_secret).
    type: str
  load_generator_image:
    description:
      - The load generator image, as written by C(playbooks/build_images.yml).
    type: str
    required: true
  aggregator_image:
    description:
      - The aggregator image, as written by C(playbooks/build_images.yml).
    type: str
    required: true
  log_group:
    description:
      - The CloudWatch Logs group both containers log to (C(awslogs)), in each region.
    type: str
    required: true
  aggregator_cpu:
    description:
      - The aggregator's CPU units; the load generator gets the rest of the task's.
    type: int
    default: 256
  aggregator_memory:
    description:
      - The aggregator's memory reservation in MiB; the load generator reserves the rest of the task's.
    type: int
    default: 512
  aggregator_port:
    description:
      - The port the aggregator listens on, on the task's loopback.
    type: int
    default: 9464
  interval_seconds:
    description:
      - The length of the results' intervals.
    type: int
    default: 5
  script_name:
    description:
      - The file name of the run's script, for RV(manifest).
    type: str
    default: script.js
  endpoint_url:
    description:
      - One endpoint for every AWS service the tasks call (an emulator); omit for AWS.
    type: str
notes:
  - Supports check mode; it changes nothing in any mode.
"""

EXAMPLES = r"""
- name: What the tasks of the run get
  constellation.loadtest.task_contract:
    config: "{{ constellation_config }}"
    home: "{{ constellation_home }}"
    run_id: nightly-42
    load_model: script
    load_generator_image: 123456789012.dkr.ecr.eu-central-1.amazonaws.com/constellation/load-generator:20250601T120000Z
    aggregator_image: 123456789012.dkr.ecr.eu-central-1.amazonaws.com/constellation/aggregator:20250601T120000Z
    log_group: /ecs/constellation
  register: contract

- name: Start the run's tasks in us-east-2
  constellation.loadtest.ecs_load_tasks:
    cluster: constellation
    task_definition: constellation-load
    run_id: nightly-42
    tasks: "{{ contract.regions['us-east-2'].tasks }}"
    subnets: [subnet-0123456789abcdef0]
    region: us-east-2
"""

RETURN = r"""
script_env:
  description: The script's environment as the tasks get it (O(script_env) checked, values as text).
  returned: always
  type: dict
  sample: {"BASE_URL": "https://shop.example.com"}
k6_env_arguments:
  description: The k6 command-line arguments that give a script that environment (C(k6 inspect) on the controller).
  returned: always
  type: list
  elements: str
  sample: ["--env", "BASE_URL=https://shop.example.com"]
regions:
  description: By remote region, what its task definition and its tasks get.
  returned: always
  type: dict
  contains:
    containers:
      description:
        - The task definition's container definitions, in the shape of ECS's C(containerDefinitions)
          (C(name), C(image), C(essential), C(cpu), C(memoryReservation), C(environment), C(logConfiguration),
          and the load generator's C(secrets) when O(script_secrets) names any).
      type: list
      elements: dict
    tasks:
      description:
        - One element per planned task of the region, task index I(i) first at I(i); each maps a
          container name to the environment variables that container gets on top of the task
          definition's (a C(containerOverrides) entry).
      type: list
      elements: dict
      sample:
        - load-generator:
            CONSTELLATION_RUN_ID: nightly-42
            CONSTELLATION_TASK_INDEX: "0"
            CONSTELLATION_EXECUTION_SEGMENT: "0:1/3"
            CONSTELLATION_EXECUTION_SEGMENT_SEQUENCE: "0,1/3,2/3,1"
          aggregator:
            CONSTELLATION_RUN_ID: nightly-42
            CONSTELLATION_TASK_INDEX: "0"
    secret_statements:
      description:
        - The IAM policy statements the region's task execution role needs to read O(script_secrets) and
          O(prometheus_secret) (and decrypt them with O(secrets_kms_key)), naming exactly those; empty without secrets.
      type: list
      elements: dict
      sample: [{"Sid": "ReadTheScriptsParameters", "Effect": "Allow", "Action": "ssm:GetParameters",
                "Resource": ["arn:aws:ssm:eu-central-1:123456789012:parameter/api-token"]}]
    task_statements:
      description:
        - More IAM policy statements for the region's task role, beyond the orchestrator and the results store
          (remote write to an Amazon Managed Service for Prometheus workspace, exactly that one); often empty.
      type: list
      elements: dict
      sample: [{"Sid": "RemoteWriteTheLiveMetrics", "Effect": "Allow", "Action": "aps:RemoteWrite",
                "Resource": ["arn:aws:aps:eu-west-1:123456789012:workspace/ws-0123abcd-4567-89ef-0123-456789abcdef"]}]
    run_objects:
      description: The same as RV(run_objects), for the region's task role policy.
      type: dict
manifest:
  description:
    - The run as it is planned (run id, deployment, executor, home region, results store, duration,
      load model, script name, VUs and tasks per region); run_test keeps it beside the script, at
      the key C(manifest) of RV(run_objects), and visualize shows it. Empty without O(run_id).
  returned: always
  type: dict
run_objects:
  description:
    - The keys of the run's objects in the home bucket, empty without O(run_id); the one place the
      playbooks take them from.
  returned: always
  type: dict
  sample:
    script: runs/nightly-42/script.js
    manifest: runs/nightly-42/run.json
    records: runs/nightly-42/records/
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.constellation.loadtest.plugins.module_utils.run.config import Config
from ansible_collections.constellation.loadtest.plugins.module_utils.results.progress import run_objects
from ansible_collections.constellation.loadtest.plugins.module_utils.run.task_contract import ContractError
from ansible_collections.constellation.loadtest.plugins.module_utils.run.task_contract import Deployment
from ansible_collections.constellation.loadtest.plugins.module_utils.run.task_contract import Home
from ansible_collections.constellation.loadtest.plugins.module_utils.run.task_contract import Run
from ansible_collections.constellation.loadtest.plugins.module_utils.run.task_contract import LiveMetrics
from ansible_collections.constellation.loadtest.plugins.module_utils.run.task_contract import contract
from ansible_collections.constellation.loadtest.plugins.module_utils.run.task_contract import k6_env_arguments
from ansible_collections.constellation.loadtest.plugins.module_utils.run.task_contract import manifest


def main():
    module = AnsibleModule(
        argument_spec=dict(
            config=dict(type="dict", required=True),
            home=dict(type="dict", required=True),
            regions=dict(type="list", elements="str"),
            run_id=dict(type="str"),
            load_model=dict(type="str", choices=["vus", "script"], default="vus"),
            start_timeout_seconds=dict(type="int", default=900),
            script_env=dict(type="raw", default={}),
            script_sha256=dict(type="str"),
            # ARNs, never values: ECS reads the values when a task starts.
            script_secrets=dict(type="raw", default={}, no_log=False),
            secrets_kms_key=dict(type="str", no_log=False),
            prometheus_remote_write_url=dict(type="str"),
            # The ARN of the secret, never its value.
            prometheus_secret=dict(type="str", no_log=False),
            prometheus_username=dict(type="str"),
            load_generator_image=dict(type="str", required=True),
            aggregator_image=dict(type="str", required=True),
            log_group=dict(type="str", required=True),
            aggregator_cpu=dict(type="int", default=256),
            aggregator_memory=dict(type="int", default=512),
            aggregator_port=dict(type="int", default=9464),
            interval_seconds=dict(type="int", default=5),
            endpoint_url=dict(type="str"),
            script_name=dict(type="str", default="script.js"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        config = Config(**params["config"])
        deployment = Deployment(
            home=Home.from_names(params["home"]),
            load_generator_image=params["load_generator_image"],
            aggregator_image=params["aggregator_image"],
            task_cpu=config.task_cpu,
            task_memory=config.task_memory,
            log_group=params["log_group"],
            aggregator_cpu=params["aggregator_cpu"],
            aggregator_memory=params["aggregator_memory"],
            aggregator_port=params["aggregator_port"],
            interval_seconds=params["interval_seconds"],
            endpoint_url=params["endpoint_url"] or None,
            script_secrets=params["script_secrets"],
            secrets_kms_key=params["secrets_kms_key"] or None,
            live_metrics=LiveMetrics.from_settings(
                params["prometheus_remote_write_url"], params["prometheus_secret"], params["prometheus_username"]
            ),
        )
        run = None
        if params["run_id"]:
            run = Run(
                params["run_id"], params["load_model"], params["start_timeout_seconds"], params["script_env"], params["script_sha256"]
            )
        regions = contract(config, deployment, run, params["regions"])
    except (ContractError, TypeError) as error:
        module.fail_json(msg=f"task_contract: {error}")
    script_env = dict(run.script_env) if run else {}
    module.exit_json(
        changed=False,
        regions=regions,
        run_objects=run_objects(run.run_id) if run else {},
        manifest=manifest(config, run, params["script_name"]) if run else {},
        script_env=script_env,
        k6_env_arguments=k6_env_arguments(script_env),
    )


if __name__ == "__main__":
    main()
