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

$(STAMP): pyproject.toml
	@test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	# torch/torchvision pinned: these builds lie on the development machines' disk.
	$(VPY) -m pip install -q -e ".[dev]"
	@touch $(STAMP)

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
		|| echo "espeak-ng: apt-get install failed; real-audio tests will be skipped"; \
	else \
		echo "espeak-ng: not installed and cannot install (needs root and apt-get); real-audio tests will be skipped. Install it with: sudo apt-get install espeak-ng"; \
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
