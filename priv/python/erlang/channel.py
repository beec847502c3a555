"""``from erlang.channel import Channel, ChannelClosed, reply`` (the module
path of erlang_python 4.x); the code is in ``erlang._channel``."""

from __future__ import annotations

from erlang._channel import ByteChannel, ByteChannelClosed, Channel, ChannelClosed, reply

__all__ = ["ByteChannel", "ByteChannelClosed", "Channel", "ChannelClosed", "reply"]
