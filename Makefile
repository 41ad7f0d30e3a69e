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

# Debian's espeak-ng: the default speech engine on Linux, and real-audio tests need it.
espeak:
	@if command -v espeak-ng >/dev/null 2>&1; then \
		echo "espeak-ng: present"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "espeak-ng: installing with apt-get"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng >/dev/null) \
		|| echo "espeak-ng: apt-get install failed; real-audio tests will be skipped (and fail in CI, which sets ASSIST_REQUIRE_DATA=1)"; \
	else \
		echo "espeak-ng: not installed and cannot install (needs root and apt-get); real-audio tests will be skipped (and fail in CI, which sets ASSIST_REQUIRE_DATA=1). Install it with: sudo apt-get install espeak-ng"; \
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
