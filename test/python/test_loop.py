"""ErlangEventLoop against the stdlib loop, the uvloop way.

``BaseLoopTests`` holds the test bodies; ``Test_ERL_Loop`` runs them on
:class:`erlang.ErlangEventLoop`, ``Test_AIO_Loop`` on asyncio's own selector
loop, so a difference in behaviour shows up as one of the two failing.  The
file runs in a plain interpreter (``python3 -m pytest test/python``) and
inside the VM (test/python_SUITE.erl).  CPython's own asyncio suite runs on
the loop in test/py_asyncio_cpython_SUITE.erl; this file covers what that
suite cannot: the entry points of the ``erlang`` module, sub-millisecond
timers, and that ``ssl=`` never sends plaintext.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib.util
import os
import socket
import ssl
import statistics
import sys
import sysconfig
import tempfile
import threading
import time
import warnings

import pytest

if importlib.util.find_spec("erlang") is None:  # without test/python/conftest.py
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "priv", "python"))

import erlang  # noqa: E402
from erlang import _loop  # noqa: E402


def _certdata(name: str) -> str:
    """A certificate of CPython's own test suite (Lib/test/certdata)."""
    return os.path.join(sysconfig.get_path("stdlib"), "test", "certdata", name)


def _tls_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(_certdata("keycert3.pem"))  # signed for "localhost"
    client = ssl.create_default_context(cafile=_certdata("pycacert.pem"))
    return server, client


class EchoProtocol(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)  # type: ignore[attr-defined]


async def _echo_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     payload: bytes) -> bytes:
    writer.write(payload)
    await writer.drain()
    data = await reader.readexactly(len(payload))
    writer.close()
    await writer.wait_closed()
    return data


class BaseLoopTests:
    @staticmethod
    def new_loop() -> asyncio.AbstractEventLoop:
        raise NotImplementedError

    @pytest.fixture
    def loop(self):
        loop = self.new_loop()
        yield loop
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    def test_call_soon_order_and_call_later(self, loop):
        seen = []
        loop.call_later(0.02, seen.append, "later")
        loop.call_soon(seen.append, 1)
        loop.call_soon(seen.append, 2)
        loop.call_later(0.03, loop.stop)
        loop.run_forever()
        assert seen == [1, 2, "later"]

    def test_call_soon_threadsafe_from_threads(self, loop):
        done = loop.create_future()
        seen = []

        def from_thread(i):
            loop.call_soon_threadsafe(seen.append, i)
            if i == 9:
                loop.call_soon_threadsafe(done.set_result, None)

        async def main():
            threads = [threading.Thread(target=from_thread, args=(i,)) for i in range(10)]
            for t in threads:
                t.start()
            await done
            for t in threads:
                t.join()
            await asyncio.sleep(0)

        loop.run_until_complete(main())
        assert sorted(seen) == list(range(10))

    def test_executor(self, loop):
        async def main():
            ident = await loop.run_in_executor(None, threading.get_ident)
            return ident, await asyncio.to_thread(sum, [1, 2, 3])

        ident, total = loop.run_until_complete(main())
        assert ident != threading.get_ident() and total == 6

    def test_add_reader_writer(self, loop):
        a, b = socket.socketpair()
        a.setblocking(False)
        got = loop.create_future()
        loop.add_reader(a, lambda: got.set_result(a.recv(10)) if not got.done() else None)
        writable = loop.create_future()
        loop.add_writer(b, lambda: writable.done() or writable.set_result(True))
        try:
            assert loop.run_until_complete(writable) is True
            loop.remove_writer(b)
            b.send(b"ping")
            assert loop.run_until_complete(got) == b"ping"
        finally:
            loop.remove_reader(a)
            a.close()
            b.close()

    def test_sock_api(self, loop):
        async def main():
            srv = socket.create_server(("127.0.0.1", 0))
            srv.setblocking(False)
            cli = socket.socket()
            cli.setblocking(False)
            try:
                accept = asyncio.ensure_future(loop.sock_accept(srv))
                await loop.sock_connect(cli, srv.getsockname())
                conn, _ = await accept
                with conn:
                    await loop.sock_sendall(cli, b"hello")
                    return await loop.sock_recv(conn, 5)
            finally:
                cli.close()
                srv.close()

        assert loop.run_until_complete(main()) == b"hello"

    def test_tcp_echo_server_and_streams(self, loop):
        async def main():
            server = await loop.create_server(EchoProtocol, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            data = await _echo_once(reader, writer, b"x" * 100_000)
            server.close()
            await server.wait_closed()
            return data

        assert loop.run_until_complete(main()) == b"x" * 100_000

    def test_unix_echo(self, loop):
        path = os.path.join(tempfile.mkdtemp(), "echo.sock")

        async def main():
            server = await loop.create_unix_server(EchoProtocol, path)
            reader, writer = await asyncio.open_unix_connection(path)
            data = await _echo_once(reader, writer, b"unix")
            server.close()
            await server.wait_closed()
            return data

        try:
            assert loop.run_until_complete(main()) == b"unix"
        finally:
            if os.path.exists(path):  # 3.13 removes it when the server closes
                os.unlink(path)
            os.rmdir(os.path.dirname(path))

    def test_datagram(self, loop):
        class Echo(asyncio.DatagramProtocol):
            def connection_made(self, transport):
                self.transport = transport

            def datagram_received(self, data, addr):
                self.transport.sendto(data.upper(), addr)

        class Client(asyncio.DatagramProtocol):
            def __init__(self):
                self.got = loop.create_future()

            def datagram_received(self, data, addr):
                self.got.set_result(data)

        async def main():
            server, _ = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
            addr = server.get_extra_info("sockname")
            client, proto = await loop.create_datagram_endpoint(Client, remote_addr=addr)
            client.sendto(b"udp")
            try:
                return await asyncio.wait_for(proto.got, 5)
            finally:
                client.close()
                server.close()

        assert loop.run_until_complete(main()) == b"UDP"

    def test_getaddrinfo(self, loop):
        infos = loop.run_until_complete(
            loop.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM))
        assert infos and infos[0][4] == ("127.0.0.1", 80)

    def test_tls_echo(self, loop):
        server_ctx, client_ctx = _tls_contexts()

        async def main():
            server = await loop.create_server(EchoProtocol, "127.0.0.1", 0, ssl=server_ctx)
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=client_ctx, server_hostname="localhost")
            version = writer.get_extra_info("ssl_object").version()
            data = await _echo_once(reader, writer, b"secret" * 1000)
            server.close()
            await server.wait_closed()
            return version, data

        version, data = loop.run_until_complete(main())
        assert version.startswith("TLS") and data == b"secret" * 1000

    def test_tls_never_sends_plaintext(self, loop):
        """A client given ssl= sends a TLS handshake, never its payload: the
        raw server sees a TLS record (0x16) and not one byte of the secret."""
        _, client_ctx = _tls_contexts()
        received = bytearray()

        class Raw(asyncio.Protocol):
            def connection_made(self, transport):
                self.transport = transport

            def data_received(self, data):
                received.extend(data)
                self.transport.close()  # no handshake answer: the client fails

        async def main():
            server = await loop.create_server(Raw, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(
                    "127.0.0.1", port, ssl=client_ctx, server_hostname="localhost"), 5)
            except (ConnectionError, ssl.SSLError, OSError):
                pass
            else:
                writer.write(b"SECRET-PAYLOAD")
                writer.close()
                raise AssertionError("the TLS handshake succeeded against a raw server")
            finally:
                server.close()
                await server.wait_closed()

        loop.run_until_complete(main())
        assert received[:1] == b"\x16" and b"SECRET" not in received

    def test_start_tls(self, loop):
        server_ctx, client_ctx = _tls_contexts()

        async def handle(reader, writer):
            assert await reader.readline() == b"STARTTLS\n"
            writer.write(b"OK\n")
            await writer.drain()
            await writer.start_tls(server_ctx)
            writer.write((await reader.readline()).upper())
            await writer.drain()
            writer.close()

        async def main():
            server = await asyncio.start_server(handle, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"STARTTLS\n")
            assert await reader.readline() == b"OK\n"
            await writer.start_tls(client_ctx, server_hostname="localhost")
            assert writer.get_extra_info("ssl_object") is not None
            writer.write(b"over tls\n")
            line = await reader.readline()
            writer.close()
            server.close()
            await server.wait_closed()
            return line

        assert loop.run_until_complete(main()) == b"OVER TLS\n"


class Test_ERL_Loop(BaseLoopTests):
    new_loop = staticmethod(erlang.new_event_loop)

    def test_is_an_erlang_loop(self, loop):
        assert isinstance(loop, erlang.ErlangEventLoop)
        assert isinstance(loop, asyncio.SelectorEventLoop)
        assert isinstance(loop._selector, _loop.ErlangSelector)

    def test_signal_handlers_refused(self, loop):
        for call in (lambda: loop.add_signal_handler(2, print),
                     lambda: loop.remove_signal_handler(2)):
            with pytest.raises(NotImplementedError, match="signals are handled by the Erlang VM"):
                call()

    def test_subprocess_runs(self, loop):
        # In the VM through an Erlang port (erlang._port_transport), in a
        # plain interpreter asyncio's own transport.
        async def main():
            p = await asyncio.create_subprocess_exec(
                "sh", "-c", "cat; echo e >&2", stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            out = await p.communicate(b"x")
            q = await asyncio.create_subprocess_shell("exit 3")
            return out, p.returncode, await q.wait()

        assert loop.run_until_complete(main()) == ((b"x", b"e\n"), 0, 3)

    def test_sub_millisecond_timers(self, loop):
        """epoll_wait counts milliseconds: the stdlib loop wakes a 0.3 ms timer
        after 1 ms or more; this one after about 0.3 ms (median of 21)."""
        async def one():
            t0 = time.perf_counter()
            await asyncio.sleep(0.0003)
            return time.perf_counter() - t0

        samples = [loop.run_until_complete(one()) for _ in range(21)]
        assert 0.0003 <= statistics.median(samples) < 0.0009, samples


class Test_AIO_Loop(BaseLoopTests):
    new_loop = staticmethod(asyncio.SelectorEventLoop)


# The entry points of the erlang module.

async def _loop_type() -> str:
    await asyncio.sleep(0)
    return type(asyncio.get_running_loop()).__name__


def test_run():
    assert erlang.run(_loop_type()) == "ErlangEventLoop"


def test_runner_loop_factory():
    with asyncio.Runner(loop_factory=erlang.new_event_loop) as runner:
        assert runner.run(_loop_type()) == "ErlangEventLoop"
        assert isinstance(runner.get_loop(), erlang.ErlangEventLoop)


def test_policy_and_install():
    old = asyncio.get_event_loop_policy()
    try:
        asyncio.set_event_loop_policy(erlang.EventLoopPolicy())
        assert erlang.EventLoopPolicy is erlang.ErlangEventLoopPolicy
        assert asyncio.run(_loop_type()) == "ErlangEventLoop"
        asyncio.set_event_loop_policy(None)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            erlang.install()
        deprecated = [w for w in caught if issubclass(w.category, DeprecationWarning)]
        assert bool(deprecated) == (sys.version_info >= (3, 12))
        assert isinstance(asyncio.get_event_loop_policy(), erlang.ErlangEventLoopPolicy)
        assert asyncio.run(_loop_type()) == "ErlangEventLoop"
    finally:
        asyncio.set_event_loop_policy(old)


def test_sleep_blocks_in_sync_code():
    t0 = time.monotonic()
    assert erlang.sleep(0.12) is None
    assert time.monotonic() - t0 >= 0.12


def test_sleep_is_awaitable_in_async_code():
    async def main():
        t0 = time.monotonic()
        await erlang.sleep(0.05)
        return time.monotonic() - t0

    assert erlang.run(main()) >= 0.05


def test_spawn_task_runs_on_the_shared_loop():
    async def where(x):
        await asyncio.sleep(0)
        return threading.current_thread().name, x

    future = erlang.spawn_task(where(7))
    assert future.result(10) == ("erlang-asyncio", 7)
    assert erlang.spawn_task(where(8)).result(10) == ("erlang-asyncio", 8)
    assert isinstance(_loop.shared_loop(), erlang.ErlangEventLoop)


def test_spawn_task_cancel():
    started = threading.Event()

    async def forever():
        started.set()
        await asyncio.sleep(3600)

    future = erlang.spawn_task(forever())
    assert started.wait(10)
    future.cancel()
    with pytest.raises(concurrent.futures.CancelledError):
        future.result(10)
