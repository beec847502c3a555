"""The Python half of an isolated context: the VM's requests, run in a child.

An isolated context (``py_context:new(#{mode => isolated})``) runs its
interpreter in a child OS process that ``erlang._child`` starts; this module
is what runs there.  It serves the same requests as the NIF's context
thread (``c_src/context/exec.c``): ``call``, ``eval``, ``exec``, streams,
object references, ``last_traceback``; with the same per-process
namespaces (one globals dict per calling Erlang process, dropped when the
VM says the process died) and the same conversion (``erlang._etf``).

Requests run on the main thread, one at a time, innermost last on
``Child.stack``: while a request waits for an ``erlang.call`` answer it
runs the requests that arrive meanwhile (a callback that calls Python again
is a nested request, as in the VM).  ``Child.native`` is the ``_erlang``
module of the child: ``erlang.call``, ``erlang.send`` and the stream
helpers go through the channel to the context process.

Stopping a request: the VM sends a STOP frame (a timeout, a cancel) or an
INTERRUPT frame (``py_context:interrupt/1``), then SIGINT.  The handler
reads the frames that have arrived and raises ``erlang.CallInterrupted``
only in the request they name, once; a request still queued is dropped
(DROPPED tells the VM).  A signal lands inside blocking C calls
(``time.sleep``, a socket read); a C loop that never checks for signals is
the VM's to kill after ``kill_after``.
"""

from __future__ import annotations

import builtins
import importlib
import itertools
import sys
import threading
import types
from collections import deque

from erlang import _chan
from erlang._chan import Channel, Frame
from erlang._etf import Decoder, Encoder
from erlang._types import Atom, CallInterrupted, Pid, Ref

# A child starts without typing or the signal module (its enums: some
# milliseconds at each start; see erlang/__init__.py): _signal has what
# the child uses (signal, pthread_kill, SIGINT).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal
    from typing import Any
else:
    import _signal as signal

__all__ = ["Child", "current"]

#: The Child of this process (an isolated context's child), for tests.
current: Child | None = None

_OK = Atom("ok")
_ERROR = Atom("error")
_DONE = Atom("done")
_REF = Atom("$erlang_python_ref")
_MAIN = "__main__"
_CODE_CACHE_MAX = 512
_RECENT_MAX = 256


class _Request:
    __slots__ = ("caller", "owner", "parked", "raised", "rid", "running", "sync")

    def __init__(self, rid: int, sync: bool = False) -> None:
        self.rid = rid
        self.sync = sync  # a caller waits for the reply on the fast socket
        self.owner: int | None = None  # the VM's number for the namespace's process
        self.caller: Pid | None = None
        self.parked = 0  # > 0 while it waits for Erlang (an answer, stream credit)
        self.raised = False  # CallInterrupted raised in it already
        # Between its start and the end of its code: only then does a
        # signal raise CallInterrupted in it (never in _run's own epilogue,
        # where it would escape the request).
        self.running = False


class Child:
    """The state of an isolated context's child, and its main loop."""

    def __init__(self, chan: Channel, server: Pid, generation: int,
                 max_depth: int = 1000) -> None:
        self.chan = chan
        self.server = server
        self.generation = generation
        self.inbox: deque[Frame] = deque()  # REQ and DOWN frames, for the main thread
        self.stack: list[_Request] = []  # running requests, innermost last
        self.stops: set[int] = set()  # running requests to interrupt
        self.slots: dict[int, bytes | None] = {}  # callback id -> answer (None: waiting)
        self.credits: dict[int, int] = {}  # stream request id -> items it may send
        # The last replies sent on the fast socket, by request id, for a
        # RESEND (the caller reading them died before it handed them on).
        self.recent: dict[int, bytes] = {}
        self.registered: frozenset[str] = frozenset()
        # The processes the VM has named (PID frames), by the number it gave
        # them: a request names its owner and caller by number.
        self.pids: dict[int, Pid] = {}
        self.namespaces: dict[int, dict[str, Any]] = {}
        self.last_exc: dict[int, BaseException] = {}
        self.refs: dict[int, Any] = {}
        self.refs_of: dict[int, set[int]] = {}
        self.base_globals: dict[str, Any] = {}
        self.data: dict[str, Any] = {}  # _erlang.context_data(): erlang._setup's
        self.in_chan = False  # the main thread is in channel code (no raising there)
        self._sigint_pending = False  # a SIGINT came while it was
        self._main = threading.get_ident()
        self._ids = itertools.count(1)
        self._codes: dict[tuple[str, str], types.CodeType] = {}
        self.decoder = Decoder(max_depth, resolve_ref=self._resolve_ref)
        self.encoder = Encoder(max_depth, opaque=self._make_ref)
        self._interrupted = self.encoder.encode((_ERROR, Atom("interrupted")))
        chan.dispatch = self._dispatch
        self.native = self._native_module()
        global current
        current = self

    # ------------------------------------------------------------ the loop

    def install_signals(self) -> None:
        """Take SIGINT (the VM's interrupt of a request); before READY, since
        the VM may interrupt the first request as soon as it has sent it."""
        signal.signal(signal.SIGINT, self._on_sigint)

    def serve(self) -> None:
        """Run requests until the VM closes the channel (which ends the process)."""
        self.install_signals()
        wait = self.chan.wait
        take = self._take
        handle = self._handle
        while True:
            self.in_chan = True
            frame = wait(take)  # (None only with a timeout)
            self.in_chan = False
            if frame is not None:
                handle(frame)

    def _take(self) -> Frame | None:
        """The next frame of the inbox, with ``cond`` held (so that a STOP
        cannot take it meanwhile), or None."""
        inbox = self.inbox
        return inbox.popleft() if inbox else None

    def _next(self, stop_waiting: Any) -> Frame | None:
        """The next frame for the main thread; None when ``stop_waiting()``
        becomes true first."""
        inbox = self.inbox
        self.in_chan = True
        try:
            found = self.chan.wait(lambda: inbox.popleft() if inbox else stop_waiting())
            return found if type(found) is tuple else None
        finally:
            self.in_chan = False

    def _handle(self, frame: Frame) -> None:
        kind, a, b, body = frame
        if kind == _chan.REQ_SYNC:
            self._run(a, b, body, True)
        elif kind == _chan.REQ:
            self._run(a, b, body)
        elif kind == _chan.DOWN:
            self._forget(a)
        elif kind == _chan.ASYNC_CANCEL:
            self._async_cancel(self.decoder.decode(body))

    def _dispatch(self, frame: Frame) -> None:
        """A frame just read, by any thread, with ``chan.cond`` held."""
        kind, a, _b, body = frame
        if (kind == _chan.REQ_SYNC or kind == _chan.REQ or kind == _chan.DOWN
                or kind == _chan.ASYNC_CANCEL):
            self.inbox.append(frame)
        elif kind == _chan.CB_REPLY:
            if a in self.slots:
                self.slots[a] = body
        elif kind == _chan.STOP:
            self._stop(a)
        elif kind == _chan.INTERRUPT:
            if self.stack:
                self._stop(self.stack[-1].rid)
        elif kind == _chan.CREDIT:
            if a in self.credits:
                self.credits[a] += int(self.decoder.decode(body))
        elif kind == _chan.PID:
            self.pids[a] = self.decoder.decode(body)
        elif kind == _chan.PUBLISH:
            self.registered = frozenset(str(n) for n in self.decoder.decode(body))
        elif kind == _chan.RESEND:
            for rid in self.decoder.decode(body):
                data = self.recent.get(rid)
                if data is not None:
                    self.chan.send_fast(_chan.REPLY, rid, 0, data)

    def _stop(self, rid: int) -> None:
        for frame in self.inbox:
            if (frame[0] == _chan.REQ or frame[0] == _chan.REQ_SYNC) and frame[1] == rid:
                self.inbox.remove(frame)
                self.chan.send(_chan.DROPPED, rid, 0)
                return
        if any(r.rid == rid for r in self.stack):
            self.stops.add(rid)
            top = self.stack[-1]
            if top.rid == rid and not top.parked and threading.get_ident() != self._main:
                signal.pthread_kill(self._main, signal.SIGINT)  # read by another thread
        else:
            # Finished already (its reply may wait unread on the fast
            # socket): the VM need not kill this child for it.
            self.chan.send(_chan.DONE, rid, 0)

    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self.in_chan:
            self._sigint_pending = True  # looked at when the channel code is done
            return
        if not self.stack:
            return
        self._sigint_pending = False
        self.in_chan = True
        try:
            self.chan.poll()
        finally:
            self.in_chan = False
        top = self.stack[-1]
        if top.rid in self.stops and top.running and not top.parked and not top.raised:
            top.raised = True
            raise CallInterrupted("the request was stopped by Erlang")

    def _check_stop(self, req: _Request) -> None:
        if req.rid in self.stops and not req.raised:
            req.raised = True
            raise CallInterrupted("the request was stopped by Erlang")

    def send(self, kind: int, a: int, b: int, body: bytes = b"", fast: bool = False) -> None:
        """Send a frame (on the fast socket if ``fast``); on the main thread,
        never cut by a signal's exception."""
        send = self.chan.send_fast if fast else self.chan.send
        if threading.get_ident() != self._main:
            send(kind, a, b, body)
            return
        was, self.in_chan = self.in_chan, True
        try:
            send(kind, a, b, body)
        finally:
            self.in_chan = was
        if self._sigint_pending and not was:
            self._on_sigint(signal.SIGINT, None)

    # ------------------------------------------------------------ requests

    def _run(self, rid: int, who: int, body: bytes, sync: bool = False) -> None:
        req = _Request(rid, sync)
        fast = False
        try:
            self.stack.append(req)
            try:
                req.owner = who >> 32
                req.caller = self.pids[who & 0xFFFFFFFF]
                req.running = True
                result = self._execute(req, self.decoder.decode(body))
                req.running = False
                if type(result) is tuple and len(result) == 2:  # {ok, V}, {error, R}
                    data = self.encoder.encode_tagged(result[0], result[1])
                else:
                    data = self.encoder.encode(result)
            except CallInterrupted:
                req.running = False
                data = self._interrupted
            except BaseException as exc:  # noqa: BLE001 - every error is the caller's reply
                req.running = False
                data = self._error(req, exc)
        except BaseException:  # a CallInterrupted in the handlers above, at their start
            req.running = False
            data = self._interrupted
        finally:
            stack = self.stack
            if stack[-1] is req:
                stack.pop()
            else:
                stack.remove(req)
            fast = sync and rid not in self.stops and len(data) <= _chan.FAST_MAX
            self.stops.discard(rid)
            self.credits.pop(rid, None)
        if fast:
            recent = self.recent
            if len(recent) >= _RECENT_MAX:
                del recent[next(iter(recent))]
            recent[rid] = data
            self.send(_chan.REPLY, rid, 0, data, fast=True)
        else:
            self.send(_chan.REPLY, rid, 0, data)

    def _error(self, req: _Request, exc: BaseException) -> bytes:
        if req.owner is not None:
            self.last_exc[req.owner] = exc
        name = getattr(type(exc), "__erlang_name__", None) or type(exc).__name__
        if not isinstance(name, str) or not name or len(name) > 255:
            name = "PythonError"
        try:
            text = str(exc)
        except Exception:  # noqa: BLE001
            text = ""
        return self.encoder.encode((_ERROR, (Atom(name), [ord(c) for c in text])))

    def _execute(self, req: _Request, p: Any) -> Any:
        kind = p[0] if type(p) is tuple else p
        if kind == "call" and len(p) in (4, 6):
            fn = self._resolve(req, _text(p[1]), _text(p[2]))
            result = fn(*p[3], **self._kwargs(p[4])) if len(p) == 6 and p[4] else fn(*p[3])
            return self._result(req, result, p[5] if len(p) == 6 else "term")
        if kind == "eval" and len(p) == 4:
            ns = self._namespace(req)
            code = self._compiled(p[1], "eval")
            scope = ns
            if p[2]:
                scope = dict(ns)
                scope.update(self._names(p[2], "local names"))
            return self._result(req, eval(code, scope), p[3])  # noqa: S307 - the request
        if kind == "exec" and len(p) == 2:
            exec(self._compiled(p[1], "exec"), self._namespace(req))  # noqa: S102
            return _OK
        if kind == "getattr" and len(p) == 4:
            return self._result(req, getattr(p[1], str(p[2])), p[3])
        if kind == "call_method" and len(p) == 6:
            method = getattr(p[1], str(p[2]))
            result = method(*p[3], **self._kwargs(p[4])) if p[4] else method(*p[3])
            return self._result(req, result, p[5])
        if kind == "to_term" and len(p) == 2:
            return (_OK, p[1])
        if kind == "last_traceback":
            return (_OK, self._traceback(req))
        if kind == "nop":
            return _OK
        return (_ERROR, (Atom("bad_request"), p))

    def _result(self, req: _Request, value: Any, mode: Any) -> Any:
        if mode == "term" and type(value) in _PLAIN:
            return (_OK, value)
        if type(mode) is tuple and len(mode) == 2 and mode[0] == "stream":
            from erlang import _stream

            self.credits[req.rid] = int(mode[1])
            _stream.pump(value)
            return _DONE
        if mode == "list":
            from erlang import _stream

            return (_OK, _stream.collect(value))
        if _is_coroutine(value):  # a coroutine's result, as 5.x's isolated contexts
            import asyncio

            value = asyncio.run(value)
        if mode == "ref":
            return (_OK, self._make_ref(value))
        return (_OK, value)

    def _resolve(self, req: _Request, mod: str, fn: str) -> Any:
        if mod == _MAIN:
            head, _, rest = fn.partition(".")
            ns = self._namespace(req)
            if head in ns:
                obj = ns[head]
            elif hasattr(builtins, head):
                obj = getattr(builtins, head)
            else:
                raise NameError(f"name '{head}' is not defined in the caller's namespace")
            return _walk(obj, rest) if rest else obj
        module = sys.modules.get(mod)
        if module is None:
            module = importlib.import_module(mod)
        return getattr(module, fn) if "." not in fn else _walk(module, fn)

    def _namespace(self, req: _Request) -> dict[str, Any]:
        owner = req.owner
        if owner is None:
            raise RuntimeError("no Erlang process owns this request")
        ns = self.namespaces.get(owner)
        if ns is None:
            ns = dict(self.base_globals)
            # The application's preload (erlang._setup keeps its globals here).
            seed = self.data.get("seed")
            if isinstance(seed, dict):
                ns.update(seed)
            ns["__builtins__"] = builtins
            ns["__name__"] = _MAIN
            self.namespaces[owner] = ns
        return ns

    def _compiled(self, source: Any, mode: str) -> types.CodeType:
        if not isinstance(source, str):
            raise TypeError("expected a UTF-8 binary")
        key = (mode, source)
        code = self._codes.get(key)
        if code is None:
            code = compile(source, "<erlang>", mode)
            if len(self._codes) >= _CODE_CACHE_MAX:
                self._codes.clear()
            self._codes[key] = code
        return code

    @staticmethod
    def _names(mapping: Any, what: str) -> dict[str, Any]:
        if not isinstance(mapping, dict):
            raise TypeError(f"{what} must be a map")
        for key in mapping:
            if not isinstance(key, str):
                raise TypeError(f"{what} must be atoms or UTF-8 binaries, not {key!r}")
        return mapping

    def _kwargs(self, mapping: Any) -> dict[str, Any]:
        return self._names(mapping, "keyword argument names")

    def _traceback(self, req: _Request) -> Any:
        exc = self.last_exc.get(req.owner) if req.owner is not None else None
        if exc is None:
            return None
        import traceback

        return "".join(traceback.format_exception(exc))

    @staticmethod
    def _async_cancel(refs: Any) -> None:
        """Cancel py:async_call tasks on this child's loop (their caller has
        dropped their aliases: an outcome sent now goes nowhere).  In order
        with the caller's requests, so their submissions ran before; one
        that comes later still (sent through the context process while the
        child was replaced) finds a tombstone and is dropped."""
        if type(refs) is list:
            from erlang import _async

            _async.cancel_many(refs)

    def _forget(self, owner: int) -> None:
        pid = self.pids.get(owner)
        async_calls = sys.modules.get("erlang._async")
        if pid is not None and async_calls is not None:
            async_calls.cancel_owner(pid)  # the caller died: its tasks go too
        self.pids.pop(owner, None)
        self.namespaces.pop(owner, None)
        self.last_exc.pop(owner, None)
        for ref in self.refs_of.pop(owner, ()):
            self.refs.pop(ref, None)

    # ------------------------------------------------------------ references

    def _make_ref(self, obj: Any) -> tuple[Atom, Pid, int, int]:
        if not self.stack or threading.get_ident() != self._main:
            raise TypeError(f"{type(obj).__name__} has no Erlang term form, and outside a "
                            "request there is no context to hold a reference to it")
        owner = self.stack[-1].owner
        ref = next(self._ids)
        self.refs[ref] = obj
        if owner is not None:
            self.refs_of.setdefault(owner, set()).add(ref)
        return (_REF, self.server, self.generation, ref)

    def _resolve_ref(self, term: tuple[Any, ...]) -> Any:
        _tag, server, generation, ref = term
        if server != self.server:
            raise ValueError("a Python object reference of another context (an isolated "
                             "context's objects are used on that context)")
        if generation != self.generation:
            raise ValueError("a Python object reference from an earlier child of this "
                             "isolated context: the child restarted and its objects are gone")
        try:
            return self.refs[ref]
        except KeyError:
            raise ValueError("a Python object reference whose Erlang owner has exited") from None

    # ------------------------------------------------------------ _erlang

    def _native_module(self) -> types.ModuleType:
        mod = types.ModuleType("_erlang", "erlang_python's native half, in an isolated child")
        mod.embedded = 1  # type: ignore[attr-defined]
        mod.isolated = 1  # type: ignore[attr-defined]
        mod.call = self.call  # type: ignore[attr-defined]
        mod.send = self.send_term  # type: ignore[attr-defined]
        mod.self = self.caller  # type: ignore[attr-defined]
        mod.is_registered = lambda name: isinstance(name, str) and name in self.registered  # type: ignore[attr-defined]
        mod.registered = lambda: sorted(self.registered)  # type: ignore[attr-defined]
        mod.stream_item = self.stream_item  # type: ignore[attr-defined]
        import time

        mod.sleep = time.sleep  # type: ignore[attr-defined]
        mod.alloc_stats = dict  # type: ignore[attr-defined]
        mod.alloc_trim = lambda: None  # type: ignore[attr-defined]
        mod.context_data = lambda: self.data  # type: ignore[attr-defined]
        mod.whereis = self.whereis  # type: ignore[attr-defined]
        from erlang import _bridge  # shared dicts, channels, buffers: run in the VM

        _bridge.install(mod, self.call, self.decoder)
        return mod

    def whereis(self, name: Any) -> Any:
        """``_erlang.whereis``: the Pid registered as ``name`` in the VM, or None."""
        tag, found = self.call("erlang_python.whereis", (name,))
        return found if tag == "ok" and found is not None and found != Atom("undefined") else None

    def call(self, name: str, args: tuple[Any, ...]) -> tuple[Atom, Any]:
        """``_erlang.call``: run a registered Erlang function and wait."""
        main = threading.get_ident() == self._main
        req = self.stack[-1] if main and self.stack else None
        body = self.encoder.encode((str(name), list(args)))
        cid = next(self._ids)
        chan = self.chan
        with chan.cond:
            self.slots[cid] = None
        try:
            self.send(_chan.CALLBACK, cid, req.rid if req is not None else 0, body)
            if req is None:
                chan.wait(lambda: self.slots[cid] is not None)
            else:
                req.parked += 1
                try:
                    while True:
                        frame = self._next(lambda: self.slots[cid] is not None or
                                           req.rid in self.stops)
                        if frame is not None:
                            self._handle(frame)  # a nested request (or a DOWN)
                            continue
                        if self.slots[cid] is not None:
                            break
                        self._check_stop(req)
                finally:
                    req.parked -= 1
            with chan.cond:
                answer = self.slots.pop(cid)
        finally:
            with chan.cond:
                self.slots.pop(cid, None)
        status, payload = self.decoder.decode(answer or b"")
        return status, payload

    def send_term(self, dest: Any, msg: Any) -> None:
        """``_erlang.send``: a message to a pid, a registered name or ``(name, node)``
        (or a reference, an alias: erlang._async's outcomes)."""
        if not (isinstance(dest, (Pid, Atom, Ref)) or
                (type(dest) is tuple and len(dest) == 2 and isinstance(dest[0], Atom)
                 and isinstance(dest[1], Atom))):
            raise TypeError("erlang.send: the destination must be an erlang.Pid, an "
                            "erlang.Atom (a registered name) or a (name, node) tuple")
        self.send(_chan.SEND, 0, 0, self.encoder.encode((dest, msg)))

    def caller(self) -> Pid:
        """``_erlang.self``: the Erlang process whose request is running."""
        if threading.get_ident() != self._main or not self.stack:
            raise RuntimeError("erlang.self() is known only inside a request")
        caller = self.stack[-1].caller
        assert caller is not None
        return caller

    def stream_item(self, item: Any) -> None:
        """``_erlang.stream_item``: one item of the running stream request."""
        if threading.get_ident() != self._main or not self.stack:
            raise RuntimeError("stream items are sent only inside a stream request")
        req = self.stack[-1]
        rid = req.rid
        if rid not in self.credits:
            raise RuntimeError("the running request is not a stream request")
        body = self.encoder.encode(item)
        req.parked += 1
        try:
            while True:
                frame = self._next(lambda: self.credits[rid] > 0 or rid in self.stops)
                if frame is not None:
                    self._handle(frame)
                    continue
                self._check_stop(req)
                if self.credits[rid] > 0:
                    break
        finally:
            req.parked -= 1
        self.credits[rid] -= 1
        self.send(_chan.STREAM, rid, 0, body)


#: The types of values a call returns as they are (no coroutine to await).
_PLAIN = frozenset({float, int, str, bytes, bool, type(None), list, dict, tuple, Atom})


def _text(name: Any) -> str:
    """A module or function name as a request carries it (an atom is a str)."""
    return name if isinstance(name, str) else str(name)


def _walk(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def _is_coroutine(value: Any) -> bool:
    return type(value).__name__ == "coroutine" and hasattr(value, "send") and \
        hasattr(value, "cr_frame")
