# The two commands a newcomer needs: `make demo` and `make test`. Each sets itself up first.
.PHONY: setup demo test release solutions figures standin clean

VENV := .venv
PY := $(VENV)/bin/python

setup:
	@bash scripts/setup.sh

demo: setup
	@$(PY) -m autograder.cli demo

test: setup
	@$(PY) -m pytest

# Instructor chores: regenerate what is committed from source/ (tests fail when it is stale).
release: setup
	@$(PY) -m autograder.cli release
solutions: setup
	@$(PY) -m autograder.cli solutions
figures: setup
	@$(PY) -m autograder.figures

clean:
	rm -rf gradebook.db .nbgrader.log submitted autograded feedback .pytest_cache
