# Two commands do all the set-up on a fresh clone:
#   make run    create/refresh .venv, then serve the dashboard on http://localhost:8501
#   make test   create/refresh .venv, then run the whole test suite
.PHONY: run test bootstrap samples bench

bootstrap:
	bash scripts/bootstrap.sh

run: bootstrap
	.venv/bin/python -m streamlit run app/main.py --server.port 8501

test: bootstrap
	.venv/bin/python -m pytest $(PYTEST_ARGS)

samples: bootstrap
	.venv/bin/python scripts/make_samples.py

bench: bootstrap
	for b in benchmarks/bench_*.py; do .venv/bin/python $$b || exit 1; done
