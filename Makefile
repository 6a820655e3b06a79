# The two commands a newcomer needs: `make demo` and `make test`. Each sets itself up first.
.PHONY: setup setup-test demo test test-gpu bench audit self-checks catalogues gradescope release solutions figures standin clean

VENV := .venv
PY := $(VENV)/bin/python

# The demo's set-up (venv, Python dependencies, data stand-in, bubblewrap); the tests' adds the
# system packages only tests use (PostgreSQL, Chromium).
setup:
	@bash scripts/setup.sh
setup-test:
	@bash scripts/setup.sh --test

demo: setup
	@$(PY) -m autograder.cli demo

test: setup-test
	@$(PY) -m pytest

# On a machine with an NVIDIA GPU: CUDA inside the sandbox, and tests/test_gpu.py (skips elsewhere).
test-gpu: setup
	@PYTHON=$(PY) bash scripts/gpu_check.sh

# Stock nbgrader against ours on N submissions (default 40), side by side: prints, never asserts.
bench: setup
	@$(PY) scripts/bench.py $(if $(N),--n $(N))

# Every mutant of the solution graded and compared with a plain-PyTorch oracle (minutes): the kill rate,
# the survivors, equivalent mutants that lose points. CI runs a fixed dozen (tests/test_audit.py).
audit: setup
	@$(PY) -m autograder.cli audit $(if $(JSON),--json $(JSON))

# The visible self-checks run as a student would on every correct variant and mistake of the catalogue
# (169 notebooks; in real kernels too, about 16 minutes here), each compared with what the grader says; the suite runs
# a fixed subset: half of them (every other one) as a student would, and 10 in real kernels.
self-checks: setup
	@NB10_ALL_SELF_CHECKS=1 $(PY) -m pytest tests/test_self_checks.py

# Each assignment plug-in's whole catalogue (the suite grades a fixed subset of Notebook 11's).
catalogues: setup
	@NB11_CATALOGUE=all $(PY) -m pytest assignments/notebook11/tests/test_notebook11_grading.py

# The zip to upload as the Gradescope autograder (setup.sh, run_autograder, graders, course files).
gradescope: setup
	@$(PY) -m autograder.cli gradescope --out $(or $(OUT),autograder.zip)

# Instructor chores: regenerate what is committed from source/ (tests fail when it is stale).
release: setup
	@$(PY) -m autograder.cli release
solutions: setup
	@$(PY) -m autograder.cli solutions
figures: setup
	@$(PY) -m assignments.notebook10.figures

clean:
	rm -rf gradebook.db .nbgrader.log submitted autograded feedback .pytest_cache
