#!/usr/bin/env bash
# Install what building and testing need, only when it is missing.
# Usage: scripts/ensure-deps.sh PYTHON [python-package ...]
# Debian packages come from apt-get (as root); Python packages from pip for
# the given interpreter.  Does nothing when everything is present.
set -euo pipefail
PYTHON=${1:-python3}
shift || true

need_apt=()
command -v erl >/dev/null 2>&1 || need_apt+=(erlang-nox)
command -v rebar3 >/dev/null 2>&1 || need_apt+=(rebar3)
if command -v erl >/dev/null 2>&1; then
    root=$(erl -noshell -eval 'io:format("~s", [code:root_dir()]), halt().')
    ls "$root"/erts-*/include/erl_nif.h >/dev/null 2>&1 || need_apt+=(erlang-dev)
    ls -d "$root"/lib/common_test-* >/dev/null 2>&1 || need_apt+=(erlang-common-test)
    ls -d "$root"/lib/eunit-* >/dev/null 2>&1 || need_apt+=(erlang-eunit)
else
    need_apt+=(erlang-dev erlang-common-test erlang-eunit)
fi
command -v elixir >/dev/null 2>&1 || need_apt+=(elixir)
command -v make >/dev/null 2>&1 || need_apt+=(make)
command -v cc >/dev/null 2>&1 || need_apt+=(gcc)
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    need_apt+=(python3 python3-dev python3-pip)
elif ! "$PYTHON" - <<'PY' 2>/dev/null
import os, sys, sysconfig
cfg = os.path.join(sysconfig.get_config_var("BINDIR"), "python" + sysconfig.get_config_var("VERSION") + "-config")
sys.exit(0 if os.path.exists(cfg) and sysconfig.get_config_var("Py_ENABLE_SHARED") else 1)
PY
then
    case "$(command -v "$PYTHON")" in
        /usr/bin/*) need_apt+=(python3-dev) ;;
        *) echo "ensure-deps: $PYTHON is not a shared build with python3-config" >&2; exit 1 ;;
    esac
fi

# Debian's own python3 gets pip from Debian (its ensurepip is disabled).
if [ $# -gt 0 ] && command -v "$PYTHON" >/dev/null 2>&1 &&
   ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
    case "$(command -v "$PYTHON")" in
        /usr/bin/*) need_apt+=(python3-pip) ;;
    esac
fi

# Debian's own python3 makes venvs (the semantic search example's, made by
# test/py_ml_SUITE.erl) only with python3-venv, which brings its ensurepip.
if command -v "$PYTHON" >/dev/null 2>&1 && ! "$PYTHON" -c "import ensurepip" >/dev/null 2>&1; then
    case "$(command -v "$PYTHON")" in
        /usr/bin/*) need_apt+=(python3-venv) ;;
    esac
fi

if [ ${#need_apt[@]} -gt 0 ]; then
    echo "ensure-deps: installing ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q "${need_apt[@]}"
fi

for pkg in "$@"; do
    mod=${pkg%%=*}
    mod=${mod%%[<>]*}
    if ! "$PYTHON" -c "import ${mod//-/_}" >/dev/null 2>&1; then
        echo "ensure-deps: pip installing $pkg for $PYTHON"
        "$PYTHON" -m pip --version >/dev/null 2>&1 || "$PYTHON" -m ensurepip --upgrade || true
        "$PYTHON" -m pip install -q "$pkg" ||
            "$PYTHON" -m pip install -q --break-system-packages "$pkg"
    fi
done
