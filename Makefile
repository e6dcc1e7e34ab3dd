# Two commands, each self-sufficient on a fresh machine:
#   make quickstart   creates .venv if missing, installs serkit, runs recipes/quickstart.yaml
#   make test         creates .venv if missing, installs serkit + its test, hf, docs, onnx, tensorboard and mlflow extras and the plugins, runs ruff and pytest
#   make docs         builds the documentation site (mkdocs, strict) into site/
#
# TORCH_SPEC picks the torch build (default: the CPU wheel 2.13.0); GPU users can pass
# e.g. TORCH_SPEC="torch" or an existing install with TORCH_SPEC="".

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.serkit-installed

.PHONY: quickstart test install docs clean-venv

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	@if [ -n "$(TORCH_SPEC)" ]; then $(PIP) install --quiet "$(TORCH_SPEC)"; fi
	$(PIP) install --quiet -e ".[test,hf,docs,onnx,tensorboard,mlflow]"
	# the worked example of a dataset plugin for a low-resource language (URDU)
	$(PIP) install --quiet --no-deps -e plugins/serkit-plugin-urdu
	# extractor plugins (opensmile pulls pandas/pyarrow; allosaurus pulls panphon/resampy)
	$(PIP) install --quiet opensmile allosaurus
	$(PIP) install --quiet --no-deps -e plugins/serkit-plugin-opensmile -e plugins/serkit-plugin-byol \
		-e plugins/serkit-plugin-allosaurus
	# the GE2E weights: the resemblyzer wheel without its dependencies (serkit provides them,
	# webrtcvad as webrtcvad-wheels; resemblyzer's own 'webrtcvad' is an sdist needing a C compiler)
	$(PIP) install --quiet --no-deps "resemblyzer==0.1.4"
	@touch $(STAMP)

install: $(STAMP)

quickstart: $(STAMP)
	$(VENV)/bin/serkit run recipes/quickstart.yaml --out runs/quickstart --overwrite

test: $(STAMP)
	$(VENV)/bin/ruff check serkit tests plugins benchmarks
	$(PY) -m pytest -q --durations=15

docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict --site-dir site

clean-venv:
	rm -rf $(VENV)
