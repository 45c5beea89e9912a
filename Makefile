# The two commands of the README: `make demo` (set-up + annotate the synthetic demo clip) and `make test`.
PY := .venv/bin/python

.venv/.setup-done: pyproject.toml constraints.txt scripts/setup.sh
	scripts/setup.sh
	touch $@

.PHONY: setup demo test lint bench
setup: .venv/.setup-done

demo: setup
	.venv/bin/fer-video demo --out results

test: setup
	scripts/install_browser.sh
	$(PY) -m pytest -q

lint: setup
	.venv/bin/ruff check fer_video ui tests benchmarks
	.venv/bin/ruff format --check fer_video ui tests benchmarks

bench: setup
	$(PY) benchmarks/speed.py
