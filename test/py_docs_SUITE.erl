%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc The examples in README.md and docs/*.md run: every ```erlang block
%% is parsed as a sequence of expressions and evaluated in a fresh process.
-module(py_docs_SUITE).

-include_lib("common_test/include/ct.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1]).
-export([readme/0, readme/1, docs/0, docs/1]).

all() -> [readme, docs].

%% Distributed, as docs/distributed.md's examples need (a node started with
%% -sname).
init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(erlang_python),
    case py_test_lib:ensure_distributed(py_docs) of
        {skip, _} = Skip -> Skip;
        Started -> [{started, Started} | Config]
    end.

end_per_suite(Config) ->
    _ = ?config(started, Config) =:= started andalso net_kernel:stop(),
    ok = application:stop(erlang_python).

readme() -> [{doc, "Every erlang block of README.md runs and its matches hold."}].
readme(_Config) ->
    run_file(filename:join(root(), "README.md")).

docs() -> [{doc, "Every erlang block of docs/*.md runs and its matches hold."}].
docs(_Config) ->
    Files = filelib:wildcard(filename:join([root(), "docs", "*.md"])),
    lists:foreach(fun run_file/1, Files).

%% Internal.

root() ->
    %% The suite runs from _build/test/...; the sources are beside rebar.config.
    {ok, Cwd} = file:get_cwd(),
    find_root(Cwd).

find_root("/") -> erlang:error(no_project_root);
find_root(Dir) ->
    case filelib:is_regular(filename:join(Dir, "rebar.config")) andalso
         filelib:is_regular(filename:join(Dir, "README.md")) of
        true -> Dir;
        false -> find_root(filename:dirname(Dir))
    end.

run_file(File) ->
    {ok, Text} = file:read_file(File),
    Blocks = blocks(string:split(Text, <<"\n">>, all), 1, none, []),
    ct:log("~ts: ~p erlang blocks", [File, length(Blocks)]),
    lists:foreach(fun({Line, Code}) -> run_block(File, Line, Code) end, Blocks).

blocks([], _, _, Acc) -> lists:reverse(Acc);
blocks([<<"```erlang", _/binary>> | Rest], N, none, Acc) ->
    blocks(Rest, N + 1, {N + 1, []}, Acc);
blocks([<<"```", _/binary>> | Rest], N, {Start, Lines}, Acc) ->
    Code = iolist_to_binary(lists:join(<<"\n">>, lists:reverse(Lines))),
    blocks(Rest, N + 1, none, [{Start, Code} | Acc]);
blocks([L | Rest], N, {Start, Lines}, Acc) ->
    blocks(Rest, N + 1, {Start, [L | Lines]}, Acc);
blocks([_ | Rest], N, none, Acc) ->
    blocks(Rest, N + 1, none, Acc).

run_block(File, Line, Code) ->
    Parent = self(),
    {Pid, Mon} = spawn_monitor(fun() -> Parent ! {self(), catch eval(Code)} end),
    receive
        {Pid, {'EXIT', Reason}} ->
            ct:fail("~ts:~p: example failed: ~p~n~ts", [File, Line, Reason, Code]);
        {Pid, _Value} ->
            erlang:demonitor(Mon, [flush]),
            ok;
        {'DOWN', Mon, process, Pid, Reason} ->
            ct:fail("~ts:~p: example crashed: ~p", [File, Line, Reason])
    end.

eval(Code) ->
    {ok, Tokens, _} = erl_scan:string(unicode:characters_to_list(Code)),
    {ok, Exprs} = erl_parse:parse_exprs(Tokens),
    {value, Value, _} = erl_eval:exprs(Exprs, erl_eval:new_bindings()),
    Value.
