# Two commands: `make demo` and `make test`. Both create .venv if missing and
# install what they need; nothing has to be installed by hand.
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The model server's own environment (PyTriton needs numpy<2): made once, then cached.
SERVE_STAMP := .venv-serve/.installed
PORT ?= 8000
HOST ?= 127.0.0.1
SHARED ?= $(abspath ../shared)
# The real detector for offline machines (this one cannot download yolo11n.pt).
DETECTOR ?= $(SHARED)/models/yolo11n_int8_openvino_model

.PHONY: demo test quick lint bench bench-quick soak espeak clean serve serve-venv

# The install is quiet but never silent: one line per step instead of pip's and
# setuptools' chatter (-qq still prints errors; setuptools' "Editable installation"
# banner is a warning, so it goes). torch/torchvision are pinned in pyproject.toml:
# these builds lie on the development machines' disk.
PIP := $(VPY) -m pip install -qq --disable-pip-version-check

$(STAMP): pyproject.toml
	@echo "make: installing into $(VENV) (a few minutes the first time: torch, transformers, ultralytics, openvino ...)"
	@test -x $(VPY) || { echo "make:   [1/3] creating $(VENV) with $(PY)"; $(PY) -m venv $(VENV); }
	@echo "make:   [2/3] upgrading pip"
	@$(PIP) --upgrade pip
	@echo "make:   [3/3] pip install -e \".[dev]\" (the project and its dependencies)"
	@$(PIP) -e ".[dev]"
	@touch $(STAMP)
	@echo "make: installed. Run the agent with .venv/bin/python run.py, or source .venv/bin/activate first"

venv: $(STAMP)

$(SERVE_STAMP): assist/serve/requirements.txt | $(STAMP)
	$(VPY) -m assist.serve.launch --prepare

serve-venv: $(SERVE_STAMP)

# A Triton Inference Server with the detector (and the captioner, when its weights are found):
# HTTP on PORT, gRPC on PORT+1, metrics on PORT+2, listening on HOST (this machine only by default).
serve: $(STAMP) $(SERVE_STAMP)
	@if [ -z "$$ASSIST_DETECTOR" ] && [ -e "$(DETECTOR)" ]; then export ASSIST_DETECTOR="$(DETECTOR)"; fi; \
	exec $(VPY) -m assist.serve.launch --port $(PORT) --host $(HOST) $(SERVE_ARGS)

# Debian's programs the tests drive for real: espeak-ng (the default speech engine on
# Linux; real-audio tests), Xvfb and xdotool (the preview window on a real X server).
# Installed with apt-get when root; otherwise those tests skip (and fail in CI, which
# sets ASSIST_REQUIRE_DATA=1).
TEST_PROGRAMS := espeak-ng:espeak-ng Xvfb:xvfb xdotool:xdotool
espeak:
	@missing=""; for pair in $(TEST_PROGRAMS); do \
		command -v "$${pair%%:*}" >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; \
	done; \
	if [ -z "$$missing" ]; then \
		echo "test programs: present (espeak-ng, Xvfb, xdotool)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "test programs: installing$$missing with apt-get"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
		|| echo "test programs: apt-get install failed; the tests that need$$missing will be skipped (and fail in CI)"; \
	else \
		echo "test programs:$$missing not installed and cannot install (needs root and apt-get); the tests that need them will be skipped (and fail in CI). Install them with: sudo apt-get install$$missing"; \
	fi

demo: $(STAMP)
	@if [ -z "$$ASSIST_DETECTOR" ] && [ -e "$(DETECTOR)" ]; then export ASSIST_DETECTOR="$(DETECTOR)"; fi; \
	$(VPY) run.py --demo --headless --log demo.jsonl $(DEMO_ARGS)

test: $(STAMP) $(SERVE_STAMP) espeak
	@if [ -z "$$ASSIST_DETECTOR" ] && [ -e "$(DETECTOR)" ]; then export ASSIST_DETECTOR="$(DETECTOR)"; fi; \
	export ASSIST_SHARED="$${ASSIST_SHARED:-$(SHARED)}"; \
	$(VPY) -m ruff check assist tests bench run.py && \
	$(VPY) -m pytest $(PYTEST_ARGS)

# The fast subset for development: everything but tests marked slow.
quick: $(STAMP)
	@if [ -z "$$ASSIST_DETECTOR" ] && [ -e "$(DETECTOR)" ]; then export ASSIST_DETECTOR="$(DETECTOR)"; fi; \
	export ASSIST_SHARED="$${ASSIST_SHARED:-$(SHARED)}"; \
	$(VPY) -m pytest -m "not slow" $(PYTEST_ARGS)

lint: $(STAMP)
	$(VPY) -m ruff check assist tests bench run.py

bench: $(STAMP)
	@if [ -z "$$ASSIST_DETECTOR" ] && [ -e "$(DETECTOR)" ]; then export ASSIST_DETECTOR="$(DETECTOR)"; fi; \
	$(VPY) bench/run.py --json bench/last.json

bench-quick: $(STAMP)
	@if [ -z "$$ASSIST_DETECTOR" ] && [ -e "$(DETECTOR)" ]; then export ASSIST_DETECTOR="$(DETECTOR)"; fi; \
	$(VPY) bench/run.py --quick --json bench/last.json

clean:
	rm -rf $(VENV) .venv-serve .pytest_cache .ruff_cache
