"""Type stubs for ``_erlang``, the C half of the ``erlang`` package.

The module is built into the embedded interpreter (``c_src/pymod/erlang_mod.c``)
and exists only inside the Erlang VM: importing it is how Python code tells
it runs there (see ``erlang.is_embedded``).  It is a top-level module, not
``erlang._erlang``; ``mypy_path`` in pyproject.toml points mypy here.

The public API is ``erlang`` (``_calls.py``, ``_stream.py``); these are its
primitives.  Keep this file in step with ``erlang_mod.c``:
test/python/test_runtime.py compares its public names with the real module
inside the VM.
"""

from typing import Any, Final

from erlang._types import Atom, Pid

embedded: Final[int]
"""Always 1: the module is present only in the embedded interpreter."""

def call(name: str, args: tuple[object, ...], /) -> tuple[Atom, Any]:
    """Run the Erlang function registered as ``name`` and wait (GIL released).

    Returns the Erlang side's answer (``py_callback``) as ``(status,
    payload)``: ``("ok", Value)``, ``("error", ("not_registered", Name))`` or
    ``("error", ("erlang", Class, Reason, Stack, Text))``; ``erlang.call``
    turns these into a value or an exception.  Raises ``CallInterrupted`` when the request
    it serves is cancelled while it waits.
    """

def send(dest: object, msg: object, /) -> None:
    """Send ``msg`` to a ``Pid``, an ``Atom`` registered name or a
    ``(name, node)`` tuple; never blocks.  ``LookupError`` for an
    unregistered name, ``TypeError`` for any other ``dest``."""

def self() -> Pid:
    """The Erlang process whose request runs on this thread; ``RuntimeError``
    outside a request."""

def context_data() -> dict[str, Any]:
    """The running context's own dict, kept as long as the context runs
    (``erlang._setup`` keeps the context's preload there; its ``"seed"``
    entry, a dict, is copied into every namespace made afterwards).
    ``RuntimeError`` outside a request."""

def is_registered(name: object, /) -> bool:
    """Whether an Erlang function is registered as ``name`` (False for a
    name that is not a ``str``)."""

def registered() -> list[str]:
    """The names of the registered Erlang functions."""

def stream_item(item: object, /) -> None:
    """Send one item of the running stream request, waiting for the
    consumer's credit; ``RuntimeError`` outside a request, ``CallInterrupted``
    when the stream is cancelled."""

def sleep(secs: float, /) -> None:
    """Sleep ``secs`` seconds with the GIL released; inside a request a
    timeout, cancel or context stop ends it with ``CallInterrupted``.
    ``time.sleep`` is this function inside the VM (``erlang._runtime``)."""

def alloc_stats() -> dict[str, Any]:
    """The large-block allocator's counters (``c_src/runtime/pyalloc.c``):
    ``installed`` (False under ``PYTHONMALLOC``), ``large_blocks`` and
    ``large_bytes`` (live blocks of 128 KiB or more), ``cache_blocks``,
    ``cache_bytes`` and ``cache_max`` (freed mappings kept for reuse),
    ``mapped`` and ``reused`` (mappings made, mappings taken from the cache)."""

def alloc_trim() -> None:
    """Return the cached freed large blocks to the system."""
