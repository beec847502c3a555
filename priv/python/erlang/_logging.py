"""Python's ``logging`` into OTP logger.

:class:`ErlangHandler` sends each record it handles to the registered
Erlang process ``py_logger`` (``src/py_logger.erl``) as one message; that
process calls ``logger:log/3`` with the level and metadata (``domain =>
[python]``, the logger's name, module, line, function, thread, and the pid
of the Erlang process whose request logged, when there is one).  Sending
never blocks and works from any thread, so records logged by Python
threads and by every kind of context arrive too.

Levels are filtered before a record leaves Python: the root logger and the
handler get the configured level, and a record below it costs what
``logging`` costs for a disabled level (``Logger.isEnabledFor``, cached).
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any

from erlang._calls import _native_or_none
from erlang._types import Atom

__all__ = ["ErlangHandler", "erlang_level", "setup_logging"]

_PY_LOG = Atom("py_log")
_DEBUG, _INFO, _WARNING = Atom("debug"), Atom("info"), Atom("warning")
_ERROR, _CRITICAL = Atom("error"), Atom("critical")
_DEST = Atom("py_logger")
# One setup_logging at a time: two threads replacing the handler at once
# would leave two.
_setup_lock = threading.Lock()


def erlang_level(levelno: int) -> Atom:
    """The OTP logger level of a Python level number (as erlang_python 4.x
    maps them): up to 10 ``debug``, 20 ``info``, 30 ``warning``, 40
    ``error``, above ``critical``."""
    if levelno <= 10:
        return _DEBUG
    if levelno <= 20:
        return _INFO
    if levelno <= 30:
        return _WARNING
    if levelno <= 40:
        return _ERROR
    return _CRITICAL


class ErlangHandler(logging.Handler):
    """A ``logging.Handler`` whose records go to OTP logger.

    The message is the handler's formatted record (``%(message)s`` and the
    traceback of ``exc_info`` by default; ``setFormatter`` changes it).
    Outside the Erlang VM, or while erlang_python's ``py_logger`` does not
    run, records are written to ``sys.stderr`` instead, as Python's own
    last-resort handler would.
    """

    def __init__(self, level: int = logging.NOTSET) -> None:
        super().__init__(level)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = self.format(record)
            native = _native_or_none()
            if native is None:
                _to_stderr(msg)
                return
            try:
                pid: Any = native.self()
            except RuntimeError:  # a thread outside any request
                pid = None
            message = (
                _PY_LOG, erlang_level(record.levelno), record.name, msg,
                record.module, record.lineno, record.funcName, record.pathname,
                record.threadName, pid, int(record.created * 1_000_000),
            )
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)
            return
        try:
            native.send(_DEST, message)
        except LookupError:  # py_logger is not running (the application stops)
            _to_stderr(msg)
        except Exception:
            self.handleError(record)


def _to_stderr(msg: str) -> None:
    stream = sys.stderr
    if stream is not None:
        stream.write(msg + "\n")


def setup_logging(level: int = logging.DEBUG, format: str | None = None) -> ErlangHandler:
    """Send the records of every logger to OTP logger from ``level`` up.

    An :class:`ErlangHandler` replaces any on the root logger; the root
    logger and the handler get ``level``; ``format`` (a ``logging.Formatter``
    format string) shapes the message.  Returns the handler.
    ``py:configure_logging/0,1`` calls this in every interpreter.
    """
    handler = ErlangHandler(level)
    if format:
        handler.setFormatter(logging.Formatter(format))
    root = logging.getLogger()
    with _setup_lock:
        for old in list(root.handlers):
            if isinstance(old, ErlangHandler):
                root.removeHandler(old)
        root.addHandler(handler)
        root.setLevel(level)
    return handler
