#!/usr/bin/env escript
%%! -noshell
%% A tour of erlang_python: call, eval, exec, kwargs, errors and timeouts.
%% Run it with `make demo` (which builds first).
-mode(compile).

main(_) ->
    Root = filename:dirname(filename:dirname(filename:absname(escript:script_name()))),
    [code:add_patha(D) || D <- filelib:wildcard(filename:join(Root, "_build/default/lib/*/ebin"))],
    {ok, _} = application:ensure_all_started(erlang_python),
    {ok, Version} = py:version(),
    io:format("Python ~ts embedded in Erlang/OTP ~s~n~n", [hd(string:split(Version, " ")),
                                                         erlang:system_info(otp_release)]),

    section("call a function"),
    show("py:call(math, sqrt, [16])", py:call(math, sqrt, [16])),
    show("py:call(\"statistics\", <<\"mean\">>, [[1, 2, 3, 4]])",
         py:call("statistics", <<"mean">>, [[1, 2, 3, 4]])),

    section("keyword arguments"),
    {ok, Json} = py:call(json, dumps, [#{name => <<"Ada">>, langs => [erlang, python]}],
                         #{indent => 2, sort_keys => true}),
    io:format("  py:call(json, dumps, [Map], #{indent => 2, sort_keys => true}) ->~n~ts~n~n",
              [Json]),

    section("evaluate expressions"),
    show("py:eval(<<\"sum(range(10))\">>)", py:eval(<<"sum(range(10))">>)),
    show("py:eval(<<\"x * y\">>, #{x => 5, y => 5})", py:eval(<<"x * y">>, #{x => 5, y => 5})),

    section("execute statements: the namespace belongs to this process"),
    ok = py:exec(<<"import random\n"
                   "def roll(sides=6):\n"
                   "    return random.randint(1, sides)\n"
                   "history = []\n">>),
    show("py:call('__main__', roll, [], #{sides => 20})",
         py:call('__main__', roll, [], #{sides => 20})),
    Self = self(),
    spawn(fun() -> Self ! {other, py:eval(<<"history">>)} end),
    receive {other, Other} -> show("another process evaluating history", Other) end,

    section("lossless conversion"),
    show("py:eval(<<\"2 ** 100\">>)", py:eval(<<"2 ** 100">>)),
    show("atoms and pids come back as themselves",
         py:eval(<<"(a, p)">>, #{a => hello, p => self()})),
    show("py:eval(<<\"float('nan')\">>)", py:eval(<<"float('nan')">>)),
    {ok, Ref} = py:eval(<<"object()">>),
    show("an object with no mapping is a reference: py:is_ref(Ref)", py:is_ref(Ref)),

    section("errors are values"),
    show("py:eval(<<\"1/0\">>)", py:eval(<<"1/0">>)),
    show("py:call(json, loads, [<<\"{bad\">>])", py:call(json, loads, [<<"{bad">>])),
    io:format("  py:last_traceback() ->~n~ts~n", [py:last_traceback()]),

    section("timeouts interrupt Python, and the context carries on"),
    T0 = erlang:monotonic_time(millisecond),
    show("py:eval(<<\"[i for i in iter(int, 1)]\">>, #{}, 200)",
         py:eval(<<"[i for i in iter(int, 1)]">>, #{}, 200)),
    io:format("  (returned after ~p ms)~n", [erlang:monotonic_time(millisecond) - T0]),
    show("next call on the same context", py:eval(<<"'still here'">>)),
    ok = application:stop(erlang_python),
    io:format("~nDone.~n").

section(Title) ->
    io:format("== ~ts~n", [Title]).

show(What, Result) ->
    io:format("  ~ts ->~n      ~tp~n", [What, Result]).
