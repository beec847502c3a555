"""Shared set-up for the pytest suite of the ``erlang`` Python package.

The same tests run in two places: a plain interpreter (``python3 -m pytest
test/python``) and the interpreter embedded in the Erlang VM
(``test/python_SUITE.erl``).  Inside the VM ``priv/python`` is already on
``sys.path``; in a plain interpreter this file puts it there.
"""

from __future__ import annotations

import importlib.util
import os
import sys

_PRIV_PYTHON = os.path.normpath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "priv", "python")
)

if importlib.util.find_spec("erlang") is None:
    sys.path.insert(0, _PRIV_PYTHON)

