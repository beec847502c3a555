"""Python's ``logging`` goes to OTP logger from its first import.

An interpreter that never logs should not pay for ``import logging`` (some
3 ms at every own-GIL context start), so nothing imports it here: a one-shot
finder on ``sys.meta_path`` waits for the first ``import logging`` and,
once the module has run, puts :class:`erlang.ErlangHandler` on the root
logger with the configured level (WARNING until ``py:configure_logging/1``
says otherwise).  If ``logging`` is imported already, that happens at once.

This module keeps the configuration of its interpreter; ``erlang._setup``
changes it for ``py:configure_logging/0,1``, and ``erlang._logging`` does
the rest.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # (typing is not imported at run time: see __init__)
if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType
    from typing import Any

__all__ = ["LoggingHook", "config", "configure", "install"]

# (level, format) of this interpreter: Python's levelno and a format string
# for logging.Formatter, or None for the plain message.
_config: tuple[int, str | None] = (30, None)


def config() -> tuple[int, str | None]:
    """The configured (level, format)."""
    return _config


def install() -> None:
    """Route ``logging`` to OTP logger now, or at its first import."""
    if "logging" in sys.modules:
        _apply()
    elif not any(isinstance(f, LoggingHook) for f in sys.meta_path):
        sys.meta_path.insert(0, LoggingHook())


def configure(level: int, fmt: str | None) -> None:
    """Set the level and format; applied now if ``logging`` is imported,
    else at its first import."""
    global _config
    _config = (level, fmt)
    if "logging" in sys.modules:
        _apply()


def _apply() -> None:
    from erlang import _logging

    _logging.setup_logging(*_config)


class LoggingHook:
    """A one-shot ``sys.meta_path`` finder: finds ``logging`` through the
    finders after it and wraps its loader so that, once the module has run,
    the Erlang handler is installed."""

    def find_spec(
        self,
        name: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        if name != "logging":
            return None
        try:
            sys.meta_path.remove(self)
        except ValueError:
            pass
        from importlib.util import find_spec

        spec = find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _ThenInstall(spec.loader)  # type: ignore[assignment]
        return spec

    def invalidate_caches(self) -> None:
        """Nothing is cached."""


class _ThenInstall:
    """A loader that runs the real one, then installs the handler."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        module: ModuleType | None = self._inner.create_module(spec)
        return module

    def exec_module(self, module: ModuleType) -> None:
        self._inner.exec_module(module)
        try:
            _apply()
        except Exception as exc:  # logging itself must import whatever happens
            print(f"erlang: cannot route logging to OTP logger: {exc!r}", file=sys.stderr)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
