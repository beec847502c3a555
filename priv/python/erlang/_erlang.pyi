"""Type stubs for ``_erlang``, the C half of the ``erlang`` package.

The module is built into the embedded interpreter (``c_src/erlang_mod.c``)
and exists only inside the Erlang VM: importing it is how Python code tells
it runs there (see ``erlang.is_embedded``).  It is a top-level module, not
``erlang._erlang``; ``mypy_path`` in pyproject.toml points mypy here.

Keep this file in step with ``erlang_mod.c``: test/python/test_runtime.py
compares its public names with the real module inside the VM.
"""

from typing import Final

embedded: Final[int]
"""Always 1: the module is present only in the embedded interpreter."""
