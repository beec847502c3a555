"""The Python side of erlang_python.

Inside the Erlang VM this package is on ``sys.path`` and the C extension
``_erlang`` is importable; outside it the same names import, so code and tests
that use them run in a plain interpreter too.
"""

from __future__ import annotations

from erlang._types import Atom, CallInterrupted, Pid, Ref, Term

__all__ = ["Atom", "CallInterrupted", "Pid", "Ref", "Term", "is_embedded"]


def is_embedded() -> bool:
    """True when this interpreter runs inside the Erlang VM."""
    try:
        import _erlang  # noqa: F401  (the C half, present only in the VM)
    except ImportError:
        return False
    return True
