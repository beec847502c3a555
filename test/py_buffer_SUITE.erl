%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc py_buffer and erlang.PyBuffer (c_src/shared/buffer.c,
%% c_src/pymod/buffer_py.c).
-module(py_buffer_SUITE).

-include_lib("common_test/include/ct.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1]).
-export([file_reads/1, lines/1, blocking_read/1, seek_tell_find/1, memoryview/1,
         closed/1, content_length/1, bad_input/1, interrupted/1, round_trip/1]).

suite() -> [{timetrap, {seconds, 60}}].

all() ->
    [file_reads, lines, blocking_read, seek_tell_find, memoryview, closed, content_length,
     bad_input, interrupted, round_trip].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(erlang_python),
    Config.

end_per_suite(_Config) ->
    ok = application:stop(erlang_python).

written(Data) ->
    {ok, Buf} = py_buffer:new(),
    ok = py_buffer:write(Buf, Data),
    ok = py_buffer:close(Buf),
    Buf.

file_reads(_Config) ->
    Buf = written([<<"chunk1">>, <<"chunk2">>]),
    {ok, {<<"PyBuffer">>, <<"chunk">>, 7, <<"1chunk2">>, <<>>, true, true, false, true}} =
        py:eval(<<"(type(b).__name__, b.read(5), b.readable_amount() + 0, b.read(), b.read(),"
                  " b.at_eof(), b.readable(), b.writable(), b.seekable())">>, #{b => Buf}),
    Buf2 = written(<<"abc">>),
    {ok, {<<"ab">>, <<"c">>, <<>>}} =
        py:eval(<<"(b.read_nonblock(2), b.read_nonblock(), b.read_nonblock())">>, #{b => Buf2}),
    #{size := 3, read := 3, eof := true} = py_buffer:info(Buf2),
    {ok, <<"erlang.PyBuffer">>} =
        py:eval(<<"type(b).__module__ + '.' + type(b).__name__">>, #{b => Buf2}),
    ok.

lines(_Config) ->
    Buf = written(<<"line1\nline2\n\nlast">>),
    {ok, [<<"line1\n">>, <<"line2\n">>, <<"\n">>, <<"last">>]} = py:eval(<<"list(b)">>, #{b => Buf}),
    Buf2 = written(<<"a\nbb\nccc\n">>),
    {ok, {<<"a\n">>, <<"b">>, [<<"b\n">>, <<"ccc\n">>]}} =
        py:eval(<<"(b.readline(), b.readline(1), b.readlines())">>, #{b => Buf2}),
    Buf3 = written(<<"x\ny\nz\n">>),
    {ok, [<<"x\n">>, <<"y\n">>]} = py:eval(<<"b.readlines(3)">>, #{b => Buf3}),
    ok.

blocking_read(_Config) ->
    {ok, Buf} = py_buffer:new(),
    Self = self(),
    spawn_link(fun() -> Self ! {r, py:eval(<<"(b.readline(), b.read())">>, #{b => Buf})} end),
    ok = py_buffer:write(Buf, <<"partial ">>),
    %% Other calls run while the reader waits (GIL released).
    {ok, 3.0} = py:call(math, sqrt, [9]),
    ok = py_buffer:write(Buf, <<"line\nrest">>),
    ok = py_buffer:write(Buf, <<" more">>),
    ok = py_buffer:close(Buf),
    receive {r, {ok, {<<"partial line\n">>, <<"rest more">>}}} -> ok end.

seek_tell_find(_Config) ->
    Buf = written(<<"--boundary\r\nheaders\r\n\r\nbody--boundary--">>),
    {ok, {0, 2, 4, 12, 12, 0, -1, 23, <<"body">>, 39}} =
        py:eval(<<"(b.tell(), b.find(b'boundary'), b.find(b'u'), b.seek(12), b.tell(),"
                  " b.find(b'h'), b.find(b'zzz'), b.seek(-16, 2), b.read(4), b.seek(0, 2))">>,
                #{b => Buf}),
    {ok, Open} = py_buffer:new(),
    ok = py_buffer:write(Open, <<"abc">>),
    {error, {'ValueError', "seek from the end needs the writer's close"}} =
        py:eval(<<"b.seek(0, 2)">>, #{b => Open}),
    {error, {'ValueError', "seek outside the data written"}} = py:eval(<<"b.seek(10)">>, #{b => Open}),
    {error, {'ValueError', _}} = py:eval(<<"b.seek(0, 7)">>, #{b => Open}),
    ok.

memoryview(_Config) ->
    {ok, Buf} = py_buffer:new(8),
    ok = py_buffer:write(Buf, <<"0123456789">>),   %% grows (no view yet)
    ok = py:exec(<<"
def view(b):
    global mv
    b.read(2)
    mv = memoryview(b)
    return (mv.readonly, bytes(mv[:3]), mv[0], len(b))
def release():
    mv.release()
">>),
    {ok, {true, <<"234">>, 50, 8}} = py:call('__main__', view, [Buf]),
    %% While the view is held, a write that must grow the block is refused.
    {error, view_held} = py_buffer:write(Buf, binary:copy(<<"x">>, 1 bsl 20)),
    {ok, none} = py:call('__main__', release, []),
    ok = py_buffer:write(Buf, binary:copy(<<"x">>, 1 bsl 20)),
    {error, {'TypeError', "cannot modify read-only memory"}} =
        py:eval(<<"memoryview(b).__setitem__(0, 1)">>, #{b => Buf}),
    ok.

closed(_Config) ->
    Buf = written(<<"data">>),
    {error, closed} = py_buffer:write(Buf, <<"more">>),
    {ok, {false, true}} = py:eval(<<"(b.closed, (b.close(), b.closed)[1])">>, #{b => Buf}),
    {error, {'ValueError', "I/O operation on closed buffer"}} = py:eval(<<"b.read()">>, #{b => Buf}),
    ok.

content_length(_Config) ->
    Body = binary:copy(<<"0123456789">>, 1000),
    {ok, Buf} = py_buffer:new(byte_size(Body)),
    ok = py_buffer:write(Buf, Body),
    ok = py_buffer:close(Buf),
    {ok, 10000} = py:eval(<<"len(b.read())">>, #{b => Buf}),
    {ok, Empty} = py_buffer:new(0),
    ok = py_buffer:close(Empty),
    {ok, <<>>} = py:eval(<<"b.read()">>, #{b => Empty}),
    ok.

bad_input(_Config) ->
    {'EXIT', {{badarg, {content_length, x}}, _}} = (catch py_buffer:new(x)),
    {'EXIT', {badarg, _}} = (catch py_buffer:write(make_ref(), <<"x">>)),
    {ok, Buf} = py_buffer:new(),
    {'EXIT', {badarg, _}} = (catch py_buffer:write(Buf, not_iodata)),
    ok = py_buffer:write(Buf, [<<"io">>, $l, [<<"ist">>]]),
    {'EXIT', {badarg, _}} = (catch py_buffer:close(<<>>)),
    {error, {'TypeError', _}} = py:eval(<<"b.read('x')">>, #{b => Buf}),
    {error, {'TypeError', _}} = py:eval(<<"erlang.PyBuffer()">>),
    {ok, <<"iolist">>} = py:eval(<<"b.read_nonblock()">>, #{b => Buf}),
    ok.

interrupted(_Config) ->
    {ok, Buf} = py_buffer:new(),
    {error, timeout} = py:eval(<<"b.read()">>, #{b => Buf}, 100),
    {ok, 2.0} = py:call(math, sqrt, [4]),
    ok.

round_trip(_Config) ->
    Buf = written(<<"x">>),
    {ok, Buf} = py:eval(<<"b">>, #{b => Buf}),
    {ok, true} = py:eval(<<"isinstance(b, erlang.PyBuffer)">>, #{b => Buf}),
    ok.
