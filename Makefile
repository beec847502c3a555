# Developer verbs.  PYTHON picks the interpreter to embed (default python3):
#   make test PYTHON=$(pyenv root)/versions/3.12.1/bin/python3
PYTHON ?= python3
export PYTHON
REBAR ?= rebar3

.PHONY: all deps build demo test ct pytest lint bench clean

all: build

deps:
	@scripts/ensure-deps.sh $(PYTHON) pytest cffi uv numpy

build: deps
	$(REBAR) compile

# Builds, then runs examples/demo.escript: call, eval, exec, kwargs, errors, timeouts.
demo: build
	escript examples/demo.escript

# Every test: Common Test (Erlang, and pytest inside the embedded interpreter)
# and pytest in a plain interpreter.
test: build lint
	$(PYTHON) -m pytest -q -p no:cacheprovider test/python
	$(REBAR) ct --readable=compact

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
