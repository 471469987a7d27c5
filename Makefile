# Two commands do everything on a fresh machine:
#   make demo   set up, then run the main job on the embedded default
#   make test   set up, then run the tests
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU wheel of torch lies on this machine's disk; pinning it keeps pip from pulling a CUDA build.
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= cpu,train,dev

.PHONY: setup demo test models train export bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $@

demo: setup
	$(PY) -m train models

# Quick training profile on the embedded images (scikit-image); see `python -m train fit --help`.
train: setup
	$(PY) -m train fit --profile quick

# Export every shipped checkpoint in weights/ to artifacts/<name>/.
export: setup
	$(PY) -m export

bench: setup
	$(PY) -m benchmarks.run

models: setup
	$(PY) -m train models --all

test: setup
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
