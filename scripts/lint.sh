#!/usr/bin/env bash
# Static checks of the Python code: ruff (style, imports, bugbear, and
# annotations on the package) and mypy --strict on priv/python/erlang and
# on the examples' Python
# (configuration in pyproject.toml); and of the C side's layering:
# scripts/c_layers.py (no folder of c_src/ includes or calls one above it).  Installs ruff and mypy for $PYTHON with
# scripts/ensure-deps.sh when they are missing.
# Usage: [PYTHON=python3] scripts/lint.sh        (exit status 0 when clean)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

scripts/ensure-deps.sh "$PYTHON" ruff mypy

status=0
echo "lint: ruff check priv/python test/python examples"
"$PYTHON" -m ruff check priv/python test/python examples || status=1
echo "lint: mypy priv/python/erlang"
"$PYTHON" -m mypy priv/python/erlang || status=1
echo "lint: mypy examples/semantic_search"
"$PYTHON" -m mypy examples/semantic_search || status=1
echo "lint: scripts/c_layers.py"
"$PYTHON" scripts/c_layers.py || status=1
exit $status
