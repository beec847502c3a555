%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc Buffers (py_buffer) across an isolated context's boundary (py_bridge's
%% buf_* operations, c_src/shared/buffer_read.c, priv/python/erlang/_pybuffer.py):
%% the code of a worker context reads a buffer unchanged in a child OS process.
-module(py_isolated_buffer_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").
-import(py_test_lib, [in_new_process/1, timed/1]).

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([resource_marker/1, file_reads/1, lines/1, seek_tell_find/1, same_as_worker/1,
         read_woken_by_write/1, read_woken_by_close/1, timeout_interrupts_read/1,
         large_body/1, streamed_body/1, binary_data/1, copies_not_views/1,
         reader_close/1, handles/1, from_a_thread/1, pins/1, kept_by_the_child/1,
         child_killed_mid_read/1, bad_input/1, gone/1, nested_request_while_reading/1]).

suite() ->
    [{timetrap, {minutes, 3}}].

all() ->
    [resource_marker, file_reads, lines, seek_tell_find, same_as_worker,
     read_woken_by_write, read_woken_by_close, timeout_interrupts_read, large_body,
     streamed_body, binary_data, copies_not_views, reader_close, handles, from_a_thread,
     pins, kept_by_the_child, child_killed_mid_read, bad_input, gone,
     nested_request_while_reading].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(erlang_python),
    Config.

end_per_suite(_Config) ->
    ok = application:stop(erlang_python).

init_per_testcase(_Case, Config) ->
    {ok, Ctx} = py_context:new(#{mode => isolated}),
    ok = py:exec(Ctx, <<"import erlang, threading, sys">>),
    [{ctx, Ctx} | Config].

end_per_testcase(_Case, Config) ->
    ok = py_context:stop(?config(ctx, Config)).

doc(Text) ->
    ct:comment("~ts", [Text]).

ev(Config, Code, Locals) ->
    py:eval(?config(ctx, Config), Code, Locals).

written(Data) ->
    {ok, Buf} = py_buffer:new(),
    ok = py_buffer:write(Buf, Data),
    ok = py_buffer:close(Buf),
    Buf.

%% Call Func (defined by Code in a fresh process's namespace) in a linked
%% process; the result comes as {got, Result}.
spawn_call(Ctx, Code, Func, Args) ->
    Self = self(),
    spawn_link(fun() -> ok = py:exec(Ctx, Code),
                        Self ! {got, py:call(Ctx, '__main__', Func, Args)}
               end).

%% Code that tells Pid it is about to read, then evaluates Expr on buffer b.
-define(READER(Expr), <<"
import erlang
def reader(pid, b):
    erlang.send(pid, erlang.Atom('reading'))
    return ", Expr/binary, "
">>).

resource_marker(_Config) ->
    doc("The child tells a NIF resource's reference from a plain one by the VM's "
        "marker bit (erlang._etf.names_resource): it holds on this OTP."),
    {ok, Buf} = py_buffer:new(),
    {ok, Ch} = py_channel:new(),
    Marked = fun(T) -> <<131, 90, N:16, Rest/binary>> = term_to_binary(T),
                       Words = binary:part(Rest, byte_size(Rest) - 4 * N, 4 * N),
                       <<_:32, W1:32, _/binary>> = Words,
                       W1 band (1 bsl 17) =/= 0
             end,
    true = Marked(Buf),
    true = Marked(Ch),
    false = Marked(make_ref()),
    false = Marked(erlang:monitor(process, self())),
    ok = py_channel:close(Ch).

file_reads(Config) ->
    doc("read, read_nonblock, readable_amount, len, at_eof and the file predicates, "
        "and the type, as in a worker context; the read position is the buffer's."),
    Buf = written([<<"chunk1">>, <<"chunk2">>]),
    {ok, {<<"PyBuffer">>, <<"erlang">>, true, <<"chunk">>, 7, 7, <<"1chunk2">>, <<>>, true,
          true, false, true}} =
        ev(Config, <<"(type(b).__name__, type(b).__module__, isinstance(b, erlang.PyBuffer),"
                     " b.read(5), b.readable_amount(), len(b), b.read(), b.read(),"
                     " b.at_eof(), b.readable(), b.writable(), b.seekable())">>, #{b => Buf}),
    #{size := 12, read := 12, eof := true, closed := false} = py_buffer:info(Buf),
    Buf2 = written(<<"abc">>),
    {ok, {<<"ab">>, <<"c">>, <<>>, <<>>}} =
        ev(Config, <<"(b.read_nonblock(2), b.read_nonblock(), b.read_nonblock(), b.read(0))">>,
           #{b => Buf2}),
    {ok, Open} = py_buffer:new(),
    ok = py_buffer:write(Open, <<"xyz">>),
    {ok, {<<"x">>, <<"yz">>, <<>>, false, 0}} =
        ev(Config, <<"(b.read(1), b.read(10), b.read_nonblock(), b.at_eof(), len(b))">>,
           #{b => Open}),
    #{read := 3, eof := false} = py_buffer:info(Open).

lines(Config) ->
    doc("readline, readline(size), readlines, readlines(hint), iteration (with a final "
        "line without newline, \\r kept inside lines), and iteration mixed with read."),
    Buf = written(<<"line1\nline2\n\nlast">>),
    {ok, [<<"line1\n">>, <<"line2\n">>, <<"\n">>, <<"last">>]} = ev(Config, <<"list(b)">>, #{b => Buf}),
    Buf2 = written(<<"a\nbb\nccc\n">>),
    {ok, {<<"a\n">>, <<"b">>, [<<"b\n">>, <<"ccc\n">>], <<>>}} =
        ev(Config, <<"(b.readline(), b.readline(1), b.readlines(), b.readline())">>, #{b => Buf2}),
    Buf3 = written(<<"x\ny\nz\n">>),
    {ok, [<<"x\n">>, <<"y\n">>]} = ev(Config, <<"b.readlines(3)">>, #{b => Buf3}),
    Buf4 = written(<<"a\r\nb\rc\nd">>),
    {ok, [<<"a\r\n">>, <<"b\rc\n">>, <<"d">>]} = ev(Config, <<"b.readlines()">>, #{b => Buf4}),
    Buf5 = written(<<"h1\nh2\n\nbody bytes\nmore\n">>),
    ok = py:exec(?config(ctx, Config), <<"
def headers_then_body(b):
    headers = []
    for line in b:
        if line == b'\\n':
            break
        headers.append(line)
    return headers, b.read(), b.seek(7)
">>),
    {ok, {[<<"h1\n">>, <<"h2\n">>], <<"body bytes\nmore\n">>, 7}} =
        py:call(?config(ctx, Config), '__main__', headers_then_body, [Buf5]),
    %% a loop left early gives back what it took ahead
    Buf6 = written(<<"one\ntwo\nthree\nfour\n">>),
    ok = py:exec(?config(ctx, Config), <<"
def first(b):
    for line in b:
        return line
">>),
    {ok, <<"one\n">>} = py:call(?config(ctx, Config), '__main__', first, [Buf6]),
    #{read := 4} = py_buffer:info(Buf6),
    {ok, {<<"two\n">>, 8}} = ev(Config, <<"(next(b), b.tell())">>, #{b => Buf6}),
    {ok, [<<"three\n">>, <<"four\n">>]} = py:eval(<<"list(b)">>, #{b => Buf6}).

seek_tell_find(Config) ->
    doc("seek (every whence, every error), tell and find as in a worker context."),
    {ok, Buf} = py_buffer:new(),
    ok = py_buffer:write(Buf, <<"hello world\nbye\n">>),
    {ok, {6, <<"world">>, 11, 0, 4, 4, 6, -1, 2, 0, 0, -1}} =
        ev(Config, <<"(b.seek(6), b.read(5), b.tell(), b.seek(0), b.find(b'o'),"
                     " b.find(b'o w'), b.find(b'world'), b.find(b'zz'), b.seek(2, 1),"
                     " b.find(b'l', 0, 5), b.find(b'l', 0, 1), b.find(b'x', -1))">>,
           #{b => Buf}),
    {error, {'ValueError', "seek from the end needs the writer's close"}} =
        ev(Config, <<"b.seek(0, 2)">>, #{b => Buf}),
    {error, {'ValueError', "seek outside the data written"}} =
        ev(Config, <<"b.seek(100)">>, #{b => Buf}),
    {error, {'ValueError', "seek outside the data written"}} =
        ev(Config, <<"b.seek(-1)">>, #{b => Buf}),
    {error, {'ValueError', "whence must be 0, 1 or 2"}} = ev(Config, <<"b.seek(0, 3)">>, #{b => Buf}),
    ok = py_buffer:close(Buf),
    {ok, {12, <<"bye\n">>, 16}} = ev(Config, <<"(b.seek(-4, 2), b.read(), b.tell())">>, #{b => Buf}).

%% The same expressions on a worker context and on an isolated one.
same_as_worker(Config) ->
    doc("A battery of reads, seeks, finds and errors gives the same results (repr of "
        "values and exceptions) on a worker context and on an isolated one."),
    Exprs = [<<"b.read(3)">>, <<"b.readline()">>, <<"b.readline(2)">>, <<"b.readlines(4)">>,
             <<"list(b)">>, <<"b.read()">>, <<"b.read(-1)">>, <<"b.read(None)">>,
             <<"(b.seek(3), b.tell(), b.read(2))">>, <<"b.seek(5, 1)">>, <<"b.seek(-2, 2)">>,
             <<"b.find(b'\\n')">>, <<"b.find(b'ne', 1)">>, <<"b.find(b'', 3, 2)">>,
             <<"b.find(b'x', 0, 10**30)">>, <<"(len(b), b.readable_amount(), b.at_eof())">>,
             <<"(b.read(), b.read(), b.at_eof())">>, <<"(b.readline(0), b.read(0))">>,
             <<"b.read('x')">>, <<"b.read(1, 2)">>, <<"b.read(2**70)">>, <<"b.seek('a')">>,
             <<"b.seek(2**70)">>, <<"b.find('str')">>, <<"b.find(b'a', None)">>,
             <<"b.readlines(-5)">>, <<"(b.close(), b.closed, b.read())">>,
             <<"(b.close(), b.tell(), b.find(b'e'))">>, <<"(b.close(), b.readline())">>,
             <<"(b.close(), b.seek(0))">>, <<"bytes(b)">>, <<"(bytes(b), b.tell())">>,
             <<"erlang.PyBuffer()">>, <<"__import__('pickle').dumps(b)">>],
    Run = fun(Ctx) ->
                  [begin
                       Buf = written(<<"one\ntwo\nthree\r\nfour">>),
                       case py:eval(Ctx, <<"repr(", E/binary, ")">>, #{b => Buf}) of
                           {ok, R} -> {E, ok, R};
                           {error, {Class, _}} -> {E, error, Class}
                       end
                   end || E <- Exprs]
          end,
    {ok, W} = py_context:new(#{mode => worker}),
    try
        ok = py:exec(W, <<"import erlang">>),
        FromWorker = Run(W),
        FromChild = Run(?config(ctx, Config)),
        ?assertEqual(FromWorker, FromChild)
    after
        py_context:stop(W)
    end.

read_woken_by_write(Config) ->
    doc("A read that must wait waits in the VM until the bytes come: readline until "
        "a newline, read(n) until a byte, readlines and a for loop until more lines; "
        "other requests run meanwhile."),
    Ctx = ?config(ctx, Config),
    {ok, Buf} = py_buffer:new(),
    _ = spawn_call(Ctx, ?READER(<<"(b.readline(), b.read(3), next(iter(b)))">>), reader,
                   [self(), Buf]),
    receive reading -> ok end,
    ok = py_buffer:write(Buf, <<"part">>),
    {ok, 6} = in_new_process(fun() -> py:eval(Ctx, <<"2 * 3">>, #{}) end),
    ok = py_buffer:write(Buf, <<"ial\n">>),
    ok = py_buffer:write(Buf, <<"x">>),
    ok = py_buffer:write(Buf, <<"yz">>),
    ok = py_buffer:write(Buf, <<"line">>),
    ok = py_buffer:write(Buf, <<" two\nrest">>),
    receive {got, Got} -> {ok, {<<"partial\n">>, <<"xyz">>, <<"line two\n">>}} = Got end,
    #{read := 20, size := 24} = py_buffer:info(Buf).

read_woken_by_close(Config) ->
    doc("The writer's close ends a read that waits: read() gets all, readline the "
        "partial line, then EOF (b'')."),
    Ctx = ?config(ctx, Config),
    {ok, Buf} = py_buffer:new(),
    _ = spawn_call(Ctx, ?READER(<<"(b.read(), b.read(), b.readline())">>), reader, [self(), Buf]),
    receive reading -> ok end,
    ok = py_buffer:write(Buf, <<"all of ">>),
    ok = py_buffer:write(Buf, <<"it">>),
    ok = py_buffer:close(Buf),
    receive {got, Got1} -> {ok, {<<"all of it">>, <<>>, <<>>}} = Got1 end,
    {ok, Buf2} = py_buffer:new(),
    ok = py_buffer:write(Buf2, <<"no newline">>),
    _ = spawn_call(Ctx, ?READER(<<"(b.readline(), b.readline(), list(b))">>), reader, [self(), Buf2]),
    receive reading -> ok end,
    ok = py_buffer:close(Buf2),
    receive {got, Got2} -> {ok, {<<"no newline">>, <<>>, []}} = Got2 end.

timeout_interrupts_read(Config) ->
    doc("A call's timeout ends a read that waits (the same child goes on at once); "
        "the bytes written after it are not lost: the next read gets them."),
    Ctx = ?config(ctx, Config),
    {ok, Buf} = py_buffer:new(),
    ok = py:exec(Ctx, <<"def rd(b):\n    return b.readline()\n"
                        "def all_lines(b):\n    return [l for l in b]\n">>),
    {Ms, {error, timeout}} =
        timed(fun() -> py:call(Ctx, '__main__', rd, [Buf], #{timeout => 200}) end),
    true = Ms < 1000,
    {ok, #{generation := 1}} = py_context:child_info(Ctx),
    {ok, 4.0} = py:call(Ctx, math, sqrt, [16]),
    ok = py_buffer:write(Buf, <<"kept\n">>),
    {ok, <<"kept\n">>} = py:call(Ctx, '__main__', rd, [Buf], #{timeout => 5000}),
    {error, timeout} = py:call(Ctx, '__main__', all_lines, [Buf], #{timeout => 100}),
    ok = py_buffer:write(Buf, <<"again\n">>),
    {ok, <<"again\n">>} = py:eval(<<"b.readline()">>, #{b => Buf}),
    #{read := 11} = py_buffer:info(Buf).

large_body(Config) ->
    doc("8 MiB of random bytes: read() is every byte (in 1 MiB steps), read(n) steps, "
        "iteration by line over a body of many lines, and bytes() all give it whole."),
    Body = crypto:strong_rand_bytes(8 * 1024 * 1024 + 17),
    Md5 = crypto:hash(md5, Body),
    ok = py:exec(?config(ctx, Config), <<"import hashlib">>),
    {ok, Md5} = ev(Config, <<"hashlib.md5(b.read()).digest()">>, #{b => written(Body)}),
    {ok, {Md5, 8}} = ev(Config, <<"(lambda parts: (hashlib.md5(b''.join(parts)).digest(), "
                                  "len(parts)))(list(iter(lambda: b.read(1100000), b'')))">>,
                        #{b => written(Body)}),
    {ok, Md5} = ev(Config, <<"hashlib.md5(bytes(b)).digest()">>, #{b => written(Body)}),
    Lines = iolist_to_binary([[integer_to_binary(N), <<" some text on the line\n">>]
                              || N <- lists:seq(1, 100000)]),
    {ok, {100000, Size}} = ev(Config, <<"(lambda ls: (len(ls), sum(map(len, ls))))(list(b))">>,
                              #{b => written(Lines)}),
    Size = byte_size(Lines),
    {ok, {100000, <<"100000 some text on the line\n">>}} =
        ev(Config, <<"(lambda ls: (len(ls), ls[-1]))(b.readlines())">>, #{b => written(Lines)}),
    %% one line longer than any step
    Long = <<(binary:copy(<<"y">>, 3 * 1024 * 1024))/binary, "\nend">>,
    {ok, {3145729, <<"end">>, 3145729}} =
        ev(Config, <<"(len(b.readline()), b.readline(), len(next(iter(c))))">>,
           #{b => written(Long), c => written(Long)}).

streamed_body(Config) ->
    doc("A body written in many pieces while the child reads it (read() to EOF, and a "
        "for loop) arrives whole and in order; a write of more than 1 MiB (on a dirty "
        "scheduler) wakes the reader too."),
    Ctx = ?config(ctx, Config),
    Pieces = [crypto:strong_rand_bytes(50000 + N) || N <- lists:seq(1, 60)]
        ++ [crypto:strong_rand_bytes(3 * 1024 * 1024)],
    Body = iolist_to_binary(Pieces),
    {ok, Buf} = py_buffer:new(),
    _ = spawn_call(Ctx, ?READER(<<"__import__('hashlib').md5(b.read()).digest()">>), reader,
                   [self(), Buf]),
    receive reading -> ok end,
    [ok = py_buffer:write(Buf, P) || P <- Pieces],
    ok = py_buffer:close(Buf),
    Md5 = crypto:hash(md5, Body),
    receive {got, Got} -> {ok, Md5} = Got end,
    {ok, Buf2} = py_buffer:new(),
    _ = spawn_call(Ctx, ?READER(<<"sum(1 for _ in b)">>), reader, [self(), Buf2]),
    receive reading -> ok end,
    [ok = py_buffer:write(Buf2, <<"line ", (integer_to_binary(N))/binary, "\n">>)
     || N <- lists:seq(1, 5000)],
    ok = py_buffer:close(Buf2),
    receive {got, Got2} -> {ok, 5000} = Got2 end.

binary_data(Config) ->
    doc("Reads give bytes, also for bytes that are valid UTF-8, and every byte value "
        "comes through."),
    All = list_to_binary(lists:seq(0, 255)),
    {ok, {true, <<"bytes">>, <<"bytes">>}} =
        ev(Config, <<"(b.read() == bytes(range(256)), type(c.read(2)).__name__,"
                     " type(c.readline()).__name__)">>,
           #{b => written(All), c => written(<<"ok\n">>)}),
    {ok, [<<0, 10>>, <<255, 254, 10>>, <<0>>]} =
        ev(Config, <<"list(b)">>, #{b => written(<<0, 10, 255, 254, 10, 0>>)}).

copies_not_views(Config) ->
    doc("bytes(b) and memoryview(b) (Python 3.12+; TypeError before) are a read-only "
        "copy of the unread bytes; the position does not move, and Erlang may still "
        "grow the buffer while the copy is held (in a worker context it may not)."),
    {ok, Buf} = py_buffer:new(1),
    ok = py_buffer:write(Buf, <<"abcdef">>),
    {ok, {<<"cdef">>, 2}} = ev(Config, <<"(b.read(2), bytes(b), b.tell())[1:]">>, #{b => Buf}),
    {ok, Version} = ev(Config, <<"sys.version_info[:2]">>, #{}),
    case Version >= {3, 12} of
        true ->
            ok = py:exec(?config(ctx, Config), <<"def view(b):\n"
                                                  "    global held\n"
                                                  "    held = memoryview(b)\n"
                                                  "    return (held.readonly, held.tobytes(), b.tell())\n">>),
            {ok, {true, <<"cdef">>, 2}} = py:call(?config(ctx, Config), '__main__', view, [Buf]),
            ok = py_buffer:write(Buf, binary:copy(<<"g">>, 100000)),
            {error, {'BufferError', _}} = ev(Config, <<"b.__buffer__(1)">>, #{b => Buf});
        false ->
            {error, {'TypeError', _}} = ev(Config, <<"memoryview(b)">>, #{b => Buf})
    end.

reader_close(Config) ->
    doc("close() closes the reader's side for every reader (the VM's too): reads and "
        "seek raise ValueError, tell and find still answer, Erlang still writes."),
    {ok, Buf} = py_buffer:new(),
    ok = py_buffer:write(Buf, <<"abc\n">>),
    {ok, {false, none, true, 0, 1}} =
        ev(Config, <<"(b.closed, b.close(), b.closed, b.tell(), b.find(b'b'))">>, #{b => Buf}),
    #{closed := true} = py_buffer:info(Buf),
    {error, {'ValueError', "I/O operation on closed buffer"}} = ev(Config, <<"b.read()">>, #{b => Buf}),
    {error, {'ValueError', _}} = ev(Config, <<"list(b)">>, #{b => Buf}),
    {error, {'ValueError', _}} = ev(Config, <<"b.seek(0)">>, #{b => Buf}),
    {error, {'ValueError', _}} = py:eval(<<"b.read()">>, #{b => Buf}),
    ok = py_buffer:write(Buf, <<"more">>).

handles(Config) ->
    doc("The buffer given back is the same term; inside lists, maps and tuples it is a "
        "PyBuffer too, and in erlang.call results and channel messages; a buffer is no "
        "channel or shared dict, and a plain reference is no buffer."),
    Buf = written(<<"x\ny">>),
    {ok, Buf} = ev(Config, <<"b">>, #{b => Buf}),
    {ok, [Buf, #{<<"k">> := Buf}]} = ev(Config, <<"[b, {'k': b}]">>, #{b => Buf}),
    {ok, {true, true, true}} =
        ev(Config, <<"(isinstance(l[0], erlang.PyBuffer), isinstance(l[1]['k'], erlang.PyBuffer),"
                     " isinstance(t[1], erlang.PyBuffer))">>,
           #{l => [Buf, #{k => Buf}], t => {x, Buf}}),
    %% (the VM holds these buffers until the child has them: a handle in an
    %% erlang.call result or a message is not pinned before the child sees it)
    FromCall = written(<<"from a call\n">>),
    ok = py:register_function(iso_buf_get, fun([]) -> FromCall end),
    {ok, <<"from a call\n">>} = ev(Config, <<"erlang.iso_buf_get().readline()">>, #{}),
    {ok, Ch} = py_channel:new(),
    ViaChannel = written(<<"via a channel">>),
    ok = py_channel:send(Ch, {body, ViaChannel}),
    {ok, <<"via a channel">>} = ev(Config, <<"erlang.Channel(c).receive()[1].read()">>, #{c => Ch}),
    #{read := 13} = py_buffer:info(ViaChannel),
    {error, {'TypeError', _}} = ev(Config, <<"erlang.Channel(b)">>, #{b => Buf}),
    {error, {'TypeError', _}} = ev(Config, <<"erlang.SharedDict(b)">>, #{b => Buf}),
    {ok, {false, false}} = ev(Config, <<"(isinstance(r, erlang.PyBuffer), isinstance(c, erlang.PyBuffer))">>,
                              #{r => make_ref(), c => Ch}),
    Tab = ets:new(iso_buf_tab, []),
    {ok, <<"Ref">>} = ev(Config, <<"type(t).__name__">>, #{t => Tab}),
    ok = py:unregister_function(iso_buf_get),
    ok = py_channel:close(Ch).

from_a_thread(Config) ->
    doc("A Python thread of the child reads a buffer (waiting for the bytes) while "
        "the request's thread waits for it."),
    Ctx = ?config(ctx, Config),
    {ok, Buf} = py_buffer:new(),
    Code = <<"
import erlang, threading
def reader(pid, b):
    out = []
    t = threading.Thread(target=lambda: out.append(b.readline()))
    t.start()
    erlang.send(pid, erlang.Atom('reading'))
    t.join()
    return out[0]
">>,
    _ = spawn_call(Ctx, Code, reader, [self(), Buf]),
    receive reading -> ok end,
    ok = py_buffer:write(Buf, <<"threaded\n">>),
    receive {got, Got} -> {ok, <<"threaded\n">>} = Got end.

pins(_Config) ->
    doc("A child pins a buffer it holds while it holds it: dropped with its last "
        "PyBuffer of it (told at its next buffer operation), at the context's stop "
        "and when the child is replaced."),
    {ok, Ctx} = py_context:new(#{mode => isolated}),
    Pinned = fun() -> length([x || {{{C, _}, _}} <- ets:tab2list(py_bridge_buffers), C =:= Ctx]) end,
    0 = Pinned(),
    B1 = written(<<"1">>),
    {ok, <<"1">>} = py:eval(Ctx, <<"b.read()">>, #{b => B1}),
    1 = Pinned(),
    B2 = written(<<"2">>),
    {ok, <<"2">>} = py:eval(Ctx, <<"b.read()">>, #{b => B2}),
    1 = Pinned(),                            %% B1's released as B2 was opened
    ok = py:exec(Ctx, <<"kept = []">>),
    {ok, none} = py:eval(Ctx, <<"kept.append(b)">>, #{b => written(<<"3">>)}),
    {ok, <<"4">>} = py:eval(Ctx, <<"b.read()">>, #{b => written(<<"4">>)}),
    2 = Pinned(),                            %% the kept one, and 4's
    {error, {child_exited, _}} = py:eval(Ctx, <<"__import__('os')._exit(1)">>),
    {ok, <<"5">>} = py:eval(Ctx, <<"b.read()">>, #{b => written(<<"5">>)}),
    1 = Pinned(),                            %% the old child's went
    ok = py_context:stop(Ctx),
    ok = gen_server:call(py_bridge, sweep),  %% after the DOWN
    0 = Pinned().

kept_by_the_child(Config) ->
    doc("A PyBuffer the child keeps outlives every Erlang term of the buffer: a later "
        "request reads on where the first stopped."),
    Ctx = ?config(ctx, Config),
    {ok, <<"first\n">>} =
        in_new_process(fun() ->
                               {ok, Buf} = py_buffer:new(),
                               ok = py_buffer:write(Buf, <<"first\nsecond\n">>),
                               ok = py_buffer:close(Buf),
                               py:eval(Ctx, <<"(setattr(__import__('sys'), 'saved_buf', b), b.readline())[1]">>,
                                       #{b => Buf})
                       end),
    erlang:garbage_collect(),
    {ok, {<<"second\n">>, true}} =
        py:eval(Ctx, <<"(sys.saved_buf.readline(), sys.saved_buf.at_eof())">>).

child_killed_mid_read(Config) ->
    doc("Killing the child while a read waits: the caller gets {error, killed}, the "
        "VM goes on, the buffer still takes writes and a new child reads it."),
    Ctx = ?config(ctx, Config),
    {ok, Buf} = py_buffer:new(),
    _ = spawn_call(Ctx, ?READER(<<"b.read(5)">>), reader, [self(), Buf]),
    receive reading -> ok end,
    ok = py_context:kill(Ctx),
    receive {got, Got} -> {error, killed} = Got end,
    ok = py_buffer:write(Buf, <<"after">>),
    {ok, <<"after">>} = ev(Config, <<"b.read(5)">>, #{b => Buf}),
    {ok, #{generation := 2}} = py_context:child_info(Ctx).

bad_input(Config) ->
    doc("Bad arguments raise the worker context's TypeError/OverflowError; a bad "
        "operation of the bridge raises erlang.ErlangError in the child and badarg in "
        "Erlang."),
    Buf = written(<<"abc">>),
    [{error, {'TypeError', _}} = ev(Config, E, #{b => Buf})
     || E <- [<<"b.read(1.5)">>, <<"b.readline('x')">>, <<"b.readlines(None, 1)">>,
              <<"b.find(1)">>, <<"b.seek(0, 'x')">>, <<"type(b)(1)">>]],
    {error, {'OverflowError', _}} = ev(Config, <<"b.readline(2**64)">>, #{b => Buf}),
    {error, {'ErlangError', _}} =
        ev(Config, <<"erlang.call('erlang_python.data', erlang.Atom('buf_read'), b, -1,"
                     " erlang.Atom('any'), 0)">>, #{b => Buf}),
    {error, {'ErlangError', _}} =
        ev(Config, <<"erlang.call('erlang_python.data', erlang.Atom('buf_read'), b, 1,"
                     " erlang.Atom('sideways'), 0)">>, #{b => Buf}),
    ?assertError({badarg, _}, py_bridge:op([buf_seek, Buf, x, 0])),
    ?assertError(badarg, py_nif:buffer_take(Buf, 1, any, maybe)),
    ?assertError(badarg, py_nif:buffer_take(Buf, -1, any, false)),
    ?assertError(badarg, py_nif:buffer_find(Buf, <<"a">>, 0, 1 bsl 70)),
    ?assertError(badarg, py_nif:buffer_seek(make_ref(), 0, 0)).

gone(_Config) ->
    doc("An operation on a buffer the VM no longer has (or on a reference that names "
        "none) answers gone, which the child raises as ValueError."),
    Gone = binary_to_term(in_new_process(fun() -> {ok, B} = py_buffer:new(),
                                                  term_to_binary(B)
                                         end)),
    [gone = py_bridge:op(Op) || Op <- [[buf_read, Gone, 1, any, 0], [buf_peek, Gone, 0, 1],
                                       [buf_seek, Gone, 0, 0], [buf_find, Gone, <<"a">>, 0, 1],
                                       [buf_state, Gone], [buf_close, Gone],
                                       [buf_state, make_ref()]]],
    none = py_bridge:op([open, Gone]).

nested_request_while_reading(Config) ->
    doc("While one request waits to read, requests of other processes on the same "
        "context run, and read the same buffer (one read position)."),
    Ctx = ?config(ctx, Config),
    {ok, Buf} = py_buffer:new(),
    ok = py_buffer:write(Buf, <<"ab">>),
    _ = spawn_call(Ctx, ?READER(<<"b.readline()">>), reader, [self(), Buf]),
    receive reading -> ok end,
    {ok, <<"a">>} = in_new_process(fun() -> py:eval(Ctx, <<"b.read(1)">>, #{b => Buf}) end),
    ok = py_buffer:write(Buf, <<"c\n">>),
    receive {got, Got} -> {ok, <<"bc\n">>} = Got end.
