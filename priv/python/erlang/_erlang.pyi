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

def whereis(name: str | bytes, /) -> Pid | None:
    """The Pid registered as ``name``, or None (no atom is created)."""

class Notifier:
    """An eventfd and the tokens other threads signal through it
    (``erlang._notify``)."""
    def __init__(self) -> None: ...
    def fileno(self) -> int: ...
    def take(self) -> list[int]:
        """The tokens signalled since the last take."""
    def close(self) -> None: ...

class AsyncCall:
    """An ``erlang.async_call`` in flight."""
    def result(self) -> tuple[Atom, Any] | None:
        """None until Erlang answers, then what ``call`` returns."""

def call_async(name: str, args: tuple[object, ...], notifier: Notifier, token: int,
               /) -> AsyncCall:
    """Start ``erlang.call(name, *args)``; the answer signals ``notifier``."""

class Resource:
    """A shared dict or channel made by Erlang, kept while referenced."""
    @property
    def kind(self) -> str:
        """``'shared_dict'``, ``'channel'`` or ``'byte_channel'``."""

class ChannelWaiter:
    """A registered async receive."""
    def cancel(self) -> bool: ...

def sdict_get(handle: Resource, key: object, /) -> tuple[Any] | None: ...
def sdict_set(handle: Resource, key: object, value: object, /) -> None: ...
def sdict_del(handle: Resource, key: object, /) -> bool: ...
def sdict_keys(handle: Resource, /) -> list[Any]: ...
def sdict_len(handle: Resource, /) -> int: ...
def sdict_destroy(handle: Resource, /) -> None: ...

def ch_take(handle: Resource, /) -> tuple[Any] | None | bool:
    """(value,), None when empty, False when closed and drained."""
def ch_receive(handle: Resource, timeout_ms: float, /) -> tuple[Any] | None | bool:
    """As ch_take, waiting (GIL released); None at the timeout."""
def ch_send(handle: Resource, value: object, /) -> int:
    """0 ok, 1 busy, 2 closed."""
def ch_close(handle: Resource, /) -> None: ...
def ch_info(handle: Resource, /) -> dict[str, Any]: ...
def ch_wait_async(handle: Resource, notifier: Notifier, token: int, /) -> ChannelWaiter | None:
    """Signal ``notifier`` with ``token`` at the next message (None: one is there)."""

class PyBuffer:
    """Bytes written by Erlang (py_buffer), read as a binary file."""
    closed: bool
    def read(self, size: int | None = -1, /) -> bytes: ...
    def read_nonblock(self, size: int | None = -1, /) -> bytes: ...
    def readline(self, size: int | None = -1, /) -> bytes: ...
    def readlines(self, hint: int | None = -1, /) -> list[bytes]: ...
    def seek(self, offset: int, whence: int = 0, /) -> int: ...
    def tell(self) -> int: ...
    def find(self, sub: bytes, start: int = 0, end: int | None = None, /) -> int: ...
    def readable_amount(self) -> int: ...
    def at_eof(self) -> bool: ...
    def close(self) -> None: ...
    def readable(self) -> bool: ...
    def writable(self) -> bool: ...
    def seekable(self) -> bool: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> PyBuffer: ...
    def __next__(self) -> bytes: ...

class ChannelIterator:
    """The messages of a channel until it is closed and drained."""
    def __iter__(self) -> ChannelIterator: ...
    def __next__(self) -> Any: ...

def ch_iter(handle: Resource, /) -> ChannelIterator: ...
