%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc erlang._etf (the term codec of an isolated context's child) against
%% the VM's own term_to_binary/binary_to_term: every shape decoded and
%% encoded again in a plain Python process comes back the same term, and
%% the values Python builds (long lists and maps, written in bulk) are the
%% terms they stand for. test/python/test_etf.py has the codec's own tests.
-module(py_etf_SUITE).

-include_lib("common_test/include/ct.hrl").

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1]).
-export([terms_come_back/1, python_values/1]).

suite() ->
    [{timetrap, {seconds, 120}}].

all() ->
    [terms_come_back, python_values].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(erlang_python),
    Config.

end_per_suite(_Config) ->
    ok = application:stop(erlang_python).

%% Cases.

terms_come_back(Config) ->
    doc("Every kind of term, decoded by erlang._etf and encoded again, is the same "
        "term (nil and undefined come back as none, {bytes, B} as B)."),
    Port = python(Config),
    Terms = [0, 255, 256, -1, 1 bsl 31, -(1 bsl 31) - 1, 1 bsl 64, -(1 bsl 2100), 1.5, -2.5e300,
             ok, 'héllo', list_to_atom([16#1F600]), true, false, none, nan, infinity,
             neg_infinity, <<>>, <<"text">>, <<"é"/utf8>>, <<255, 0>>, [], "abc", {}, {1, {2}},
             [1, [2, [3]]], #{}, #{a => 1, <<"b">> => [2], 3 => #{4 => 5}}, #{[1] => list_key},
             #{{[x]} => 1}, self(), make_ref(), fun erlang:abs/1, fun() -> ok end, [1, 2 | 3],
             <<1:3>>, lists:seq(1, 100000), lists:seq(-50, 50), [I * 1000003 || I <- lists:seq(1, 500)],
             [float(I) / 3 || I <- lists:seq(1, 1000)], lists:seq(1, 300) ++ [1.5, a, <<"b">>],
             maps:from_list([{integer_to_binary(I), I} || I <- lists:seq(1, 10000)]),
             maps:from_list([{I, -I} || I <- lists:seq(1, 1000)]),
             list_to_tuple(lists:seq(1, 300)), lists:duplicate(70000, 7),
             deep(900, fun(X) -> [X] end), deep(900, fun(X) -> {X} end),
             deep(900, fun(X) -> #{k => X} end)],
    [T = echo(Port, T) || T <- Terms],
    none = echo(Port, nil),
    none = echo(Port, undefined),
    <<"raw">> = echo(Port, {bytes, <<"raw">>}),
    [none, <<1>>] = echo(Port, [undefined, {bytes, <<1>>}]),
    true = port_close(Port).

python_values(Config) ->
    doc("Values built in Python are the terms they stand for, whichever way the "
        "encoder writes them (in bulk, as a string, item by item)."),
    Port = python(Config),
    Expected = #{ints_100k => lists:seq(0, 99999),
                 negative_ints => [-I * 1000003 || I <- lists:seq(0, 999)],
                 small_ints_70k => lists:duplicate(70000, 7),
                 small_ints_20 => lists:seq(0, 19),
                 floats => [I * 0.5 - 10 || I <- lists:seq(0, 999)],
                 floats_special => lists:duplicate(19, 1.5) ++ [nan, infinity, neg_infinity],
                 mixed => lists:append(lists:duplicate(4, [1, 1 bsl 31, true, none, 2.5, <<"s">>,
                                                           <<255>>, a])),
                 str_keys_10k => maps:from_list([{iolist_to_binary(["key", integer_to_list(I)]), I}
                                                 || I <- lists:seq(0, 9999)]),
                 mixed_keys => #{<<"b">> => 1, 2 => <<"two">>, c => [3], {1, <<"t">>} => none},
                 big_ints => lists:append(lists:duplicate(8, [1 bsl 64, -(1 bsl 64), 1 bsl 2100]))},
    [begin
         Want = maps:get(Name, Expected),
         {Name, Want} = {Name, echo(Port, {value, Name})}
     end || Name <- lists:sort(maps:keys(Expected))],
    true = port_close(Port).

%% Internal.

doc(_) -> ok.

python(Config) ->
    #{python := Exe, python_path := Paths} = py_opts:runtime(),
    Script = filename:join(?config(data_dir, Config), "etf_echo.py"),
    open_port({spawn_executable, binary_to_list(Exe)},
              [{args, ["-u", Script]}, {packet, 4}, binary, exit_status,
               {env, [{"PYTHONPATH", lists:join(":", [binary_to_list(P) || P <- Paths])}]}]).

echo(Port, Term) ->
    true = port_command(Port, term_to_binary(Term)),
    receive
        {Port, {data, Bin}} -> binary_to_term(Bin);
        {Port, {exit_status, S}} -> ct:fail({python_exited, S})
    after 60000 -> ct:fail(no_answer)
    end.

deep(0, _) -> leaf;
deep(N, F) -> F(deep(N - 1, F)).
