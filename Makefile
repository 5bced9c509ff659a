# espnow-security: host build, demo and tests without boards.
#
#   make setup       Debian build packages (installed when root, else the command to run),
#                    then .venv with `pip install -e '.[dev]'` (again when pyproject.toml changes)
#   make build       host node for every configuration: build/host/<config>/espnow_node.elf
#                    (default = sdkconfig.defaults; <name> = + sdkconfig.ci.<name>),
#                    and the C unit tests (tests/c) when present
#   make demo        setup + host build + the scripted demo on the simulated air
#   make test        setup + build + C unit tests (ctest) + pytest
#   make menuconfig  edit a host configuration (CONFIG=<name>, default: default)
#   make clean       remove build/;  make distclean  also .venv and ./espnow_store
#
# Variables: JOBS (parallel jobs, default nproc), CMAKE_ARGS (extra -D for the host
# build, e.g. -DESPNOW_SEC_SANITIZE=ON), PYTEST_ARGS (default: pytest.ini's testpaths).
# The firmware for boards is built with ESP-IDF's idf.py, not with this Makefile.

SHELL := /bin/bash
.DEFAULT_GOAL := build

PYTHON3 ?= python3
VENV := .venv
PY := $(VENV)/bin/python
VENV_STAMP := $(VENV)/.espnow-sec-installed
BUILD := build
HOST_BUILD := $(BUILD)/host
CTEST_BUILD := $(BUILD)/ctest
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CONFIGS := default $(sort $(patsubst sdkconfig.ci.%,%,$(wildcard sdkconfig.ci.*)))
CONFIG ?= default
CMAKE_ARGS ?=
CTEST_CMAKE_ARGS ?=
PYTEST_ARGS ?=

# Debian packages the host build needs (python3-venv: Debian's python3 has no ensurepip).
APT_PACKAGES := libmbedtls-dev libprotobuf-c-dev protobuf-c-compiler cmake gcc libc6-dev make

.PHONY: all setup deps venv build host ctest-build demo test clean distclean menuconfig help

all: build

help:
	@sed -n '1,17s/^# \{0,1\}//p' $(firstword $(MAKEFILE_LIST))

# ---- setup ---------------------------------------------------------------------------------

setup: deps venv

deps:
	@missing=""; \
	if command -v dpkg-query >/dev/null 2>&1; then \
	    for p in $(APT_PACKAGES); do \
	        dpkg-query -W -f='$${Status}\n' "$$p" 2>/dev/null | grep -q '^install ok installed$$' \
	            || missing="$$missing $$p"; \
	    done; \
	    $(PYTHON3) -c 'import ensurepip, venv' >/dev/null 2>&1 || missing="$$missing python3-venv"; \
	else \
	    echo "note: no dpkg-query (not Debian?): make sure these are installed: $(APT_PACKAGES)"; \
	fi; \
	if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" = 0 ]; then \
	        echo "Installing Debian packages:$$missing"; \
	        apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; \
	    else \
	        echo "Missing Debian packages:$$missing"; \
	        echo "Install them with:"; \
	        echo "    sudo apt-get install -y$$missing"; \
	        exit 1; \
	    fi; \
	fi

venv: $(VENV_STAMP)

# Re-installed only when pyproject.toml is newer than the stamp.
$(VENV_STAMP): pyproject.toml | deps
	@test -x $(PY) || { echo "Creating $(VENV)"; $(PYTHON3) -m venv $(VENV); }
	$(PY) -m pip install --disable-pip-version-check -e '.[dev]'
	@touch $@

# ---- build ---------------------------------------------------------------------------------

build: host ctest-build

host: $(addprefix host-,$(CONFIGS))

# Configured every time (kconfgen runs in about a second); compiles only what changed.
host-%: | setup
	cmake -S . -B $(HOST_BUILD)/$* -DESPNOW_SEC_HOST=ON -DESPNOW_SEC_CONFIG=$* \
	    -DESPNOW_SEC_PYTHON=$(abspath $(PY)) $(CMAKE_ARGS)
	cmake --build $(HOST_BUILD)/$* -j $(JOBS)

ctest-build: | setup
	@if [ -f tests/c/CMakeLists.txt ]; then \
	    set -x; \
	    cmake -S tests/c -B $(CTEST_BUILD) $(CTEST_CMAKE_ARGS) && \
	    cmake --build $(CTEST_BUILD) -j $(JOBS); \
	else \
	    echo "tests/c/CMakeLists.txt not found: no C unit tests to build"; \
	fi

menuconfig: | setup
	cmake -DESPNOW_SEC_CONFIG=$(CONFIG) -DESPNOW_SEC_PYTHON=$(abspath $(PY)) \
	    -DESPNOW_SEC_MENUCONFIG=ON -P host/kconfig.cmake
	@echo "Configuration: $(HOST_BUILD)/$(CONFIG)/sdkconfig (if you saved it, the next 'make build' uses it" \
	      "until sdkconfig.defaults$(if $(filter default,$(CONFIG)),, or sdkconfig.ci.$(CONFIG)) changes)."

# ---- run -----------------------------------------------------------------------------------

# The demo needs the host nodes only, not the C unit tests.
demo: host
	$(VENV)/bin/espnow-sec-net demo

test: build
	@if [ -f $(CTEST_BUILD)/CTestTestfile.cmake ]; then \
	    set -x; ctest --test-dir $(CTEST_BUILD) --output-on-failure -j $(JOBS); \
	fi
	$(PY) -m pytest $(PYTEST_ARGS)

# ---- clean ---------------------------------------------------------------------------------

clean:
	rm -rf $(BUILD)

distclean: clean
	rm -rf $(VENV) espnow_store .pytest_cache .ruff_cache tools/espnow_sec.egg-info
