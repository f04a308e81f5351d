# xai-serve: the README's commands. Every target bootstraps .venv itself, idempotently:
# torch/torchvision are installed first (pinned CUDA builds that run on the CPU), then the
# client and the server (editable, with the dev extra). A second run reinstalls nothing.
PYTHON ?= python3.11
VENV   := .venv
VPY    := $(VENV)/bin/python
TORCH_STAMP := $(VENV)/.stamp-torch-2.14.1
DEPS_STAMP  := $(VENV)/.stamp-deps
PYTEST_ARGS ?=

.PHONY: sysdeps venv demo test test-fast lint protos bench bench-quick dockerlint clean

$(VPY):
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip

$(TORCH_STAMP): | $(VPY)
	$(VPY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	touch $@

$(DEPS_STAMP): $(TORCH_STAMP) pyproject.toml client/pyproject.toml
	$(VPY) -m pip install --quiet -e ./client -e '.[dev]'
	touch $@

# System packages the tests use: Debian's chromium (report tests drive it headless through
# Playwright, with no browser download), graphviz (`xai graph`) and prometheus (promtool checks the
# shipped alert rules). Installed only when missing.
SYSDEPS := chromium graphviz prometheus
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
sysdeps:
	@command -v chromium >/dev/null && command -v dot >/dev/null && command -v promtool >/dev/null || { \
	  $(SUDO) apt-get update && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends $(SYSDEPS); }

venv: sysdeps $(DEPS_STAMP)

demo: venv
	$(VENV)/bin/xai demo

test: venv lint
	$(VPY) -m pytest $(PYTEST_ARGS)

test-fast: venv
	$(VPY) -m pytest -m "not slow and not integration" $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check src client/src tests bench handlers
	$(VENV)/bin/ruff format --check src client/src tests bench handlers
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

protos: venv
	$(VPY) -m xai_serve.serving.protogen

bench: venv
	$(VPY) -m bench --full

bench-quick: venv
	$(VPY) -m bench --quick

dockerlint: venv
	$(VENV)/bin/hadolint Dockerfile

clean:
	rm -rf $(VENV) runs demo model_store/*.mar eval
