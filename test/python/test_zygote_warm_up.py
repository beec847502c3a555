"""The zygote's spare warms up by running a request on a throwaway Child
(``erlang._zygote._warm_up``): a request that no longer runs there (the
request path changed under it) would leave every forked child cold, and
silently so, since the spare ignores a failed warm-up."""

from __future__ import annotations

from erlang import _chan, _isolated, _zygote
from erlang._chan import HEADER
from erlang._etf import Decoder
from erlang._types import Atom


def test_warm_up_request_is_answered() -> None:
    sent = _zygote._warm_up()
    length, kind, rid, _b = HEADER.unpack_from(sent)
    assert (kind, rid) == (_chan.REPLY, 1)
    assert Decoder().decode(sent[HEADER.size:4 + length]) == (Atom("ok"), 2)
    assert _isolated.current is None
