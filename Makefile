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

.PHONY: venv demo test unit sanity lint clean

venv: $(INSTALLED) $(LINK)

$(INSTALLED): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip==25.3
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(LINK):
	mkdir -p $(dir $@)
	ln -sfn ../../../.. $@

demo: venv
	$(BIN)/python tools/demo.py

test: venv
	$(BIN)/python -m pytest -n 2 tests
	$(MAKE) --no-print-directory sanity lint

unit: venv
	$(BIN)/python -m pytest -n 2 tests/unit

# ansible-test needs the collection under a path ending ansible_collections/<ns>/<name>:
# copy the tracked (and new, not ignored) files there and test that copy.
sanity: venv
	rm -rf .build/sanity && mkdir -p $(SANITY_ROOT)
	git ls-files --cached --others --exclude-standard -z | xargs -0 cp --parents -t $(SANITY_ROOT)
	cd $(SANITY_ROOT) && ansible-test sanity --venv --python 3.11 --color no

lint: venv
	ansible-lint --profile production playbooks roles

clean:
	rm -rf .build tests/output
