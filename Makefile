# Developer verbs.  PYTHON picks the interpreter to embed (default python3):
#   make test PYTHON=$(pyenv root)/versions/3.12.1/bin/python3
PYTHON ?= python3
export PYTHON
REBAR ?= rebar3

.PHONY: all deps build demo demo-ml demo-elixir test ct pytest elixir-test lint bench clean

all: build

deps:
	@scripts/ensure-deps.sh $(PYTHON) pytest cffi uv numpy

build: deps
	$(REBAR) compile
	@# Byte-compiled once here: an isolated context's child would compile
	@# the package at every cold start where PYTHONDONTWRITEBYTECODE is set.
	@$(PYTHON) -m compileall -q priv/python

# Builds, then runs examples/demo.escript: call, eval, exec, kwargs, errors, timeouts.
demo: build
	escript examples/demo.escript

# Builds, then runs examples/ml_demo.escript: a semantic search with a real
# model (all-MiniLM-L6-v2 on onnxruntime); its venv is made under _build/
# on the first run.
demo-ml: build
	escript examples/ml_demo.escript

# The same search from Elixir (examples/semantic_search.exs).
demo-elixir: build
	elixir $(addprefix -pa ,$(EBIN_DIRS)) examples/semantic_search.exs

# Every test: Common Test (Erlang, and pytest inside the embedded interpreter),
# pytest in a plain interpreter, and ExUnit (erlang_python from Elixir).
test: build lint
	$(PYTHON) -m pytest -q -p no:cacheprovider test/python
	$(REBAR) ct --readable=compact
	$(MAKE) --no-print-directory elixir-test

EBIN_DIRS = $(wildcard _build/default/lib/*/ebin)

elixir-test: build
	elixir $(addprefix -pa ,$(EBIN_DIRS)) test/elixir/py_test.exs

ct: build
	$(REBAR) ct --readable=compact

pytest: deps
	$(PYTHON) -m pytest -q -p no:cacheprovider test/python

# Static checks that are cheap enough to run with every test.
lint: build
	@! git grep -n 'timer:sleep' -- 'test/*.erl' || (echo "lint: timer:sleep in tests: synchronise on messages or monitors" && false)
	$(REBAR) xref
	scripts/lint.sh

bench: build
	escript bench/run.escript

clean:
	$(REBAR) clean
	rm -rf _build/test/logs
