"""``erlang.PyBuffer`` in an isolated context's child.

In the VM a ``py_buffer`` passed to Python becomes the C type
``erlang.PyBuffer`` (``c_src/pymod/buffer_py.c``), a read-only binary file
over the bytes Erlang writes.  A child OS process cannot reach those bytes:
there the buffer's reference arrives (``erlang._etf`` asks
:meth:`Buffers.resource` about every reference that names a NIF resource),
and :class:`PyBuffer` stands for it, with the same methods, results and
errors; each operation runs in the VM (``py_bridge``'s ``buf_*``
operations, through the callback path of ``erlang.call``).  The read
position stays the VM's, shared with every other reader of the buffer.

Reads move at most :data:`CHUNK` bytes a call, ``readline`` takes a whole
line in one call, ``readlines`` many, and a ``for`` loop over the buffer
takes up to :data:`AHEAD` bytes of whole lines at once and hands them out
one by one (what it took and has not handed out goes back to the VM's
position when another method is called or the loop ends).  A read that
must wait does so in the VM, a slice at a time, and is told only that the
bytes are there (it takes them with its next call): a request stopped
meanwhile loses nothing.

A memoryview cannot cross processes: ``memoryview(buf)`` (Python 3.12+)
and ``bytes(buf)`` are a read-only copy of the unread bytes.
"""

from __future__ import annotations

import operator
import sys
import threading

from erlang._types import Atom, Ref

# An isolated child imports this module before its first answer: typing
# (and the enum and re it brings) only for the type checker, weakref with
# the first buffer (a millisecond of the start otherwise).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import weakref
    from collections.abc import Callable, Iterator
    from typing import Any

    #: ``op(name, *args)``: one of py_bridge's operations, its answer.
    Op = Callable[..., Any]

__all__ = ["AHEAD", "CHUNK", "Buffers", "PyBuffer"]

#: The most bytes one call into the VM moves.
CHUNK = 1 << 20

#: The most bytes of whole lines a ``for`` loop takes in one call.
AHEAD = 64 * 1024

#: The longest wait of one call into the VM, in ms (as the channels').
WAIT_SLICE_MS = 5000

_CLOSED = "I/O operation on closed buffer"
_GONE = "the py_buffer is gone (no Erlang term holds it any more)"
_SEEK_ERRORS = {
    "closed": _CLOSED,
    "whence": "whence must be 0, 1 or 2",
    "not_eof": "seek from the end needs the writer's close",
    "outside": "seek outside the data written",
}
_BUFFER_WRITABLE = 1  # inspect.BufferFlags.WRITABLE (3.12+)

_CACHE_MAX = 4096


def _is(answer: Any, *atoms: str) -> bool:
    return type(answer) is Atom and answer in atoms


def _ssize(value: Any, what: str) -> int:
    """``value`` as a Py_ssize_t argument of the C type: an int (or
    ``__index__``), OverflowError past the C range."""
    n = operator.index(value)
    if not -sys.maxsize - 1 <= n <= sys.maxsize:
        raise OverflowError(f"Python int too large to convert to C ssize_t ({what})")
    return n


def _size(args: tuple[Any, ...], name: str) -> int:
    if len(args) > 1:
        raise TypeError("expected at most one argument: size")
    if not args or args[0] is None:
        return -1
    return _ssize(args[0], name)


class Buffers:
    """The buffers of one child: the proxies alive (one per buffer), and the
    operations they run in the VM through ``op``."""

    def __init__(self, op: Op) -> None:
        self._op = op
        # The proxies alive: a WeakValueDictionary from the first buffer.
        self._live: dict[bytes, PyBuffer] | weakref.WeakValueDictionary[bytes, PyBuffer] = {}
        self._lock = threading.Lock()
        self._dropped: list[Any] = []  # buffers whose proxy died: unpin them
        self._plain: set[bytes] = set()  # resources that are none of the VM's handles

    def call(self, name: str, *args: Any) -> Any:
        """Run py_bridge's operation ``name``; first tell the VM which
        buffers this child dropped (with ``open``, in the same call)."""
        if self._dropped:
            with self._lock:
                dropped, self._dropped = self._dropped, []
            if dropped and name == "open":
                return self._op(Atom(name), *args, dropped)
            if dropped:
                self._op(Atom("buf_release"), dropped)
        return self._op(Atom(name), *args)

    def resource(self, ref: Ref, kinds: dict[bytes, str]) -> Any:
        """What a reference that names a NIF resource stands for: the proxy
        of a buffer (made, and pinned in the VM for this child, the first
        time), else the reference itself.  ``kinds`` caches what the VM
        said the others are."""
        etf = ref.etf
        buf = self._live.get(etf)
        if buf is not None:
            return buf
        if etf in self._plain or kinds.get(etf, "buffer") != "buffer":
            return ref
        found = self.call("open", ref)
        if type(found) is not Atom:  # `none': an ETS table's, another NIF's
            if len(self._plain) >= _CACHE_MAX:
                self._plain.clear()
            self._plain.add(etf)
            return ref
        if found != "buffer":
            if len(kinds) >= _CACHE_MAX:
                kinds.clear()
            kinds[etf] = str(found)
            return ref
        import weakref

        with self._lock:
            if type(self._live) is dict:
                self._live = weakref.WeakValueDictionary()
            buf = self._live.get(etf)
            if buf is None:
                buf = PyBuffer._make(etf, self)
                self._live[etf] = buf
                weakref.finalize(buf, self._drop, Ref(etf)).atexit = False
        return buf

    def _drop(self, handle: Ref) -> None:
        with self._lock:
            self._dropped.append(handle)


class PyBuffer(Ref):
    """A ``py_buffer`` read as a binary file, from an isolated context's
    child (see the module's text)."""

    __slots__ = ("__weakref__", "_ahead", "_bufs", "_off")
    _bufs: Buffers
    _ahead: bytes  # whole lines a for loop took from the VM and has not handed out
    _off: int  # how much of _ahead is handed out

    def __new__(cls, *args: Any, **kwargs: Any) -> PyBuffer:
        raise TypeError("cannot create 'erlang.PyBuffer' instances")

    @classmethod
    def _make(cls, etf: bytes, bufs: Buffers) -> PyBuffer:
        self: PyBuffer = object.__new__(cls)
        Ref.__init__(self, etf)
        self._bufs = bufs
        self._ahead = b""
        self._off = 0
        return self

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass  # made by _make

    def __reduce__(self) -> Any:
        raise TypeError("cannot pickle 'erlang.PyBuffer' object")

    # ------------------------------------------------------------ calls

    def _call(self, name: str, *args: Any) -> Any:
        answer = self._bufs.call(name, Ref(self.etf), *args)
        if _is(answer, "gone"):
            raise ValueError(_GONE)
        return answer

    def _give_back(self) -> None:
        """Put what a for loop took and has not handed out back (the VM's
        read position moves back over it)."""
        left = len(self._ahead) - self._off
        self._ahead, self._off = b"", 0
        if left:
            self._call("buf_seek", -left, 1)

    def _take(self, n: int, mode: str, wait: bool = True) -> bytes | None:
        """Up to ``n`` (<= CHUNK) bytes as ``mode`` says (py_shared's
        buffer_take), waiting for them if ``wait``; None at the end of the
        data (or, not waiting, when there is nothing yet)."""
        ms = WAIT_SLICE_MS if wait else 0
        while True:
            got = self._call("buf_read", n, Atom(mode), ms)
            if type(got) is bytes:
                return got
            if _is(got, "eof"):
                return None
            if _is(got, "closed"):
                raise ValueError(_CLOSED)
            if _is(got, "timeout") and not wait:
                return None
            # ready (ask again: it takes them now), timeout (wait more)

    def _state(self) -> dict[str, Any]:
        info: dict[str, Any] = self._call("buf_state")
        return info

    # ------------------------------------------------------------ reads

    def read(self, *args: Any) -> bytes:
        """read(size=-1) -> bytes: up to size bytes, waiting for at least
        one (size < 0: everything up to the writer's close); b'' at EOF."""
        size = _size(args, "size")
        self._give_back()
        if size < 0:
            parts = []
            while (part := self._take(CHUNK, "full")) is not None:
                parts.append(part)
                if len(part) < CHUNK:
                    break
            return b"".join(parts)
        first = self._take(min(size, CHUNK), "any")
        if first is None:
            return b""
        if len(first) < CHUNK or size == CHUNK:
            return first
        return first + self._more(size - len(first))

    def _more(self, n: int) -> bytes:
        """Up to ``n`` more bytes that are there now (or n < 0: all)."""
        parts = []
        while n != 0:
            part = self._take(CHUNK if n < 0 else min(n, CHUNK), "any", wait=False)
            if not part:
                break
            parts.append(part)
            n -= len(part) if n > 0 else 0
            if len(part) < CHUNK:
                break
        return b"".join(parts)

    def read_nonblock(self, *args: Any) -> bytes:
        """read_nonblock(size=-1) -> bytes: what is there, up to size, never
        waiting."""
        size = _size(args, "size")
        self._give_back()
        if size == 0:
            return self._take(0, "any", wait=False) or b""
        return self._more(size)

    def readline(self, *args: Any) -> bytes:
        """readline(size=-1) -> bytes: up to and including a newline, or
        size bytes, or to EOF."""
        size = _size(args, "size")
        if self._off < len(self._ahead):
            ahead, off = self._ahead, self._off
            end = ahead.index(b"\n", off) + 1
            if 0 <= size < end - off:
                end = off + size
            self._off = end
            if end == len(ahead):
                self._ahead, self._off = b"", 0
            return ahead[off:end]
        parts = []
        while True:
            want = CHUNK if size < 0 else min(size, CHUNK)
            part = self._take(want, "line")
            if part is None:
                break
            parts.append(part)
            if size > 0:
                size -= len(part)
            if part.endswith(b"\n") or len(part) < want or size == 0:
                break
        return b"".join(parts)

    def __iter__(self) -> Iterator[bytes]:
        return self._lines()

    def _lines(self) -> Iterator[bytes]:
        """The lines to EOF, taking whole lines AHEAD bytes at a time; what
        is left when the loop stops goes back."""
        try:
            while True:
                ahead, off = self._ahead, self._off
                if off < len(ahead):
                    end = ahead.index(b"\n", off) + 1
                    if end == len(ahead):
                        self._ahead, self._off = b"", 0
                    else:
                        self._off = end
                    yield ahead[off:end]
                    continue
                part = self._take(AHEAD, "lines")
                if part is None:
                    return
                if not part.endswith(b"\n"):  # the last line, or one longer than AHEAD
                    rest = b"" if len(part) < AHEAD else self.readline()
                    yield part + rest
                    continue
                self._ahead, self._off = part, 0
        finally:
            if self._off < len(self._ahead):
                self._give_back()

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def readlines(self, *args: Any) -> list[bytes]:
        """readlines(hint=-1) -> list of lines: to EOF, or until hint bytes
        have been read."""
        hint = _size(args, "hint")
        lines: list[bytes] = []
        total = 0
        while self._off < len(self._ahead) and not (0 < hint <= total):
            lines.append(self.readline())
            total += len(lines[-1])
        while not (0 < hint <= total):
            want = CHUNK if hint <= 0 else max(1, min(hint - total, CHUNK))
            part = self._take(want, "lines")
            if part is None:
                break
            if not part.endswith(b"\n") and len(part) == want:
                part += self.readline()  # finish the line
            total += len(part)
            lines.extend(_split_lines(part))
            if not part.endswith(b"\n"):
                break  # EOF
        return lines

    # ------------------------------------------------------------ position

    def seek(self, offset: Any, whence: Any = 0) -> int:
        """seek(offset, whence=0) -> the new position; within what is
        written, from the end only after the writer's close."""
        offset = _ssize(offset, "offset")
        whence = operator.index(whence)
        if not -2**31 <= whence < 2**31:
            raise OverflowError("signed integer is greater than maximum")
        self._give_back()
        answer = self._call("buf_seek", offset, whence)
        if answer[0] == "ok":
            return int(answer[1])
        raise ValueError(_SEEK_ERRORS.get(str(answer[1]), str(answer[1])))

    def tell(self) -> int:
        """tell() -> the read position."""
        return int(self._state()["read"]) - (len(self._ahead) - self._off)

    def find(self, sub: Any, start: Any = 0, end: Any = None) -> int:
        """find(sub, start=0, end=None) -> the index of sub in the unread
        bytes (counted from the read position), or -1; never waits."""
        needle = memoryview(sub).tobytes()
        first = _ssize(start, "start")
        last = sys.maxsize if end is None else max(-sys.maxsize - 1,
                                                   min(sys.maxsize, operator.index(end)))
        self._give_back()
        return int(self._call("buf_find", needle, first, last))

    # ------------------------------------------------------------ state

    def readable_amount(self) -> int:
        """Bytes readable now."""
        info = self._state()
        return int(info["size"]) - int(info["read"]) + len(self._ahead) - self._off

    def __len__(self) -> int:
        return self.readable_amount()

    def at_eof(self) -> bool:
        """Closed by the writer and all read."""
        info = self._state()
        return bool(info["eof"]) and info["size"] == info["read"] and self._off == len(self._ahead)

    @property
    def closed(self) -> bool:
        """Whether close() was called (on this buffer, by any reader)."""
        return bool(self._state()["closed"])

    def close(self) -> None:
        """Close the reader's side (every reader of the buffer sees it)."""
        self._give_back()
        self._call("buf_close")

    def readable(self) -> bool:
        """True."""
        return True

    def seekable(self) -> bool:
        """True."""
        return True

    def writable(self) -> bool:
        """False."""
        return False

    def __bytes__(self) -> bytes:
        """A copy of the unread bytes (the position does not move)."""
        self._give_back()
        parts: list[bytes] = []
        done = 0
        while True:
            part: bytes = self._call("buf_peek", done, CHUNK)
            parts.append(part)
            done += len(part)
            if len(part) < CHUNK:
                return b"".join(parts)

    def __buffer__(self, flags: int) -> memoryview:
        """``memoryview(buf)`` (Python 3.12+): a read-only view of a copy of
        the unread bytes."""
        if flags & _BUFFER_WRITABLE:
            raise BufferError("a PyBuffer is read-only")
        return memoryview(bytes(self))

    def __repr__(self) -> str:
        try:
            info = self._state()
        except ValueError:
            return "<erlang.PyBuffer gone>"
        at = int(info["read"]) - (len(self._ahead) - self._off)
        return (f"<erlang.PyBuffer {info['size']} bytes written, at {at}"
                f"{', eof' if info['eof'] else ''}>")


def _split_lines(data: bytes) -> list[bytes]:
    """``data`` cut after each newline (only ``\\n``: ``splitlines`` would
    cut at ``\\r`` too)."""
    parts = data.split(b"\n")
    lines = [p + b"\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


PyBuffer.__module__ = "erlang"
