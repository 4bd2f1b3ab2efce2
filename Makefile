PY ?= .venv/bin/python

.PHONY: lint format typecheck test bench check gradcheck docs

lint:
	$(PY) -m ruff check .

format:
	$(PY) -m ruff format .

typecheck:
	$(PY) -m mypy layers losses optim chainrule solver.py

test:
	$(PY) -m pytest

gradcheck:
	$(PY) -m layers.gradcheck

check: lint typecheck test
docs:
	$(PY) -m mkdocs build --strict
