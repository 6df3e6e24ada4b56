# Every target sets itself up on a fresh Debian 12 machine: apt packages, .venv with pinned wheels,
# and the package installed into the venv (non-editable, so its share/ files are installed too).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := libsdformat-dev ignition-tools liburdfdom-tools libosmesa6 libegl1 libgl1-mesa-dri socat mbpoll
SOURCES := $(shell find cell_control launch urdf config -type f -not -name '*.pyc' 2>/dev/null)

# ROS 2 from wheels: the venv is the ament prefix; DDS stays on this machine.
export AMENT_PREFIX_PATH := $(CURDIR)/$(VENV)
export RMW_IMPLEMENTATION := rmw_fastrtps_cpp
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
export MUJOCO_GL ?= egl
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: setup test demo bench lint clean

setup: $(VENV)/.installed

.apt.stamp:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "apt-get install $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@touch $@

$(VENV)/.deps: requirements.txt constraints.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -r requirements.txt -c constraints.txt 2>&1 | grep -v 'is ignored' || true
	$(PY) -c 'import rclpy, mujoco, xacro, serial, pymodbus'
	@touch $@

$(VENV)/.installed: .apt.stamp $(VENV)/.deps setup.py setup.cfg package.xml $(SOURCES)
	$(VENV)/bin/pip install -q --no-deps --no-build-isolation --force-reinstall . 2>&1 | grep -v 'is ignored' || true
	@rm -rf build cell_control.egg-info
	@test -x $(VENV)/bin/cell-control
	@touch $@

# The tests without DDS on both cores, then the DDS tests one at a time (each brings up processes of its own).
test: setup
	$(PY) -m pytest -q -p no:cacheprovider -n 2 -m 'not integration' test
	$(PY) -m pytest -q -p no:cacheprovider -m integration test

demo: setup
	@mkdir -p out
	$(VENV)/bin/cell-control demo

bench: setup
	$(VENV)/bin/pip install -q -r bench-requirements.txt 2>&1 | grep -v 'is ignored' || true
	$(PY) -m cell_control.bench

lint: setup
	$(PY) -m pytest -q -p no:cacheprovider -m linter test

clean:
	rm -rf $(VENV) .apt.stamp build install log out
