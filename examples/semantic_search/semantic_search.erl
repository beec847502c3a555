%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc The Erlang half of the semantic search example (examples/ml_demo.escript,
%% test/py_ml_SUITE.erl): a venv with the model's packages, contexts that use
%% it, documents embedded in parallel by Erlang processes, and queries
%% answered with their best hits. The Python half is minilm.py (the model)
%% and corpus.py (the sentences) beside this file.
%%
%% Not part of the erlang_python application: the escript and the suite
%% compile and load it from this file.
%%
%% The venv is made by py:ensure_venv/3 (Erlang ports: `python -m venv',
%% then pip, with `--no-deps': see requirements.txt), never from inside the
%% embedded interpreter, whose sandbox refuses to start processes. Once
%% active, it and the example's directory are on the path of every context,
%% of every kind, including those started later (py_setup).
-module(semantic_search).

-export([dir/0, python/0, venv_dir/1, ensure_venv/3,
         start_pool/4, stop_pool/1, embed/2, embed_parallel/4, search/4,
         documents/2, queries/1, labelled/2, cosine/2]).

-define(DIM, 384).
-define(ROW_BYTES, (?DIM * 4)).
-define(TIMEOUT, 600000).

%% API.

%% @doc The directory of the example (minilm.py, corpus.py, requirements.txt).
-spec dir() -> file:filename().
dir() ->
    filename:dirname(proplists:get_value(source, ?MODULE:module_info(compile))).

%% @doc The Python the NIF embeds: a venv for the contexts must be made with it.
-spec python() -> file:filename().
python() ->
    #{python := Exe} = py_opts:runtime(),
    unicode:characters_to_list(Exe).

%% @doc Where the venv of the embedded Python lives under `Build': one venv
%% per Python version and installation (`Build/ml-venv/3.11.7-<hash>').
-spec venv_dir(file:filename()) -> file:filename().
venv_dir(Build) ->
    Python = python(),
    {ok, {Major, Minor, Micro}} = py_context:python_version(),
    Tag = io_lib:format("~b.~b.~b-~.36b", [Major, Minor, Micro, erlang:phash2(Python)]),
    filename:join([Build, "ml-venv", lists:flatten(Tag)]).

%% @doc Make the venv at `Dir' with the packages of `Requirements' unless it
%% is there already with the same requirements, and make it active in every
%% context with the example's directory on their path: `ok', or
%% `{error, Reason}' with py:ensure_venv/3's shapes (`{exit_code, Code,
%% Output}', `{executable_not_found, Exe}', `{requirements_not_found, File}',
%% `{timeout, Exe}'). Options: `python' (the embedded Python), `no_deps'
%% (pip's `--no-deps', default `true'), `timeout' (ms per program, default
%% 600000), `log' (a fun called with a line before the venv is made).
-spec ensure_venv(file:filename(), file:filename(), map()) -> ok | {error, term()}.
ensure_venv(Dir, Requirements, Opts) ->
    Log = maps:get(log, Opts, fun(_) -> ok end),
    Stamp = filename:join(Dir, ".requirements"),
    Made = case file:read_file(Requirements) of
               {error, _} ->
                   {error, {requirements_not_found, unicode:characters_to_binary(Requirements)}};
               {ok, Wanted} ->
                   case file:read_file(Stamp) of
                       {ok, Wanted} ->
                           py:activate_venv(Dir);
                       _ ->
                           Log(["py:ensure_venv ", Dir, " ", Requirements]),
                           Venv = #{installer => pip, python => maps:get(python, Opts, python()),
                                    no_deps => maps:get(no_deps, Opts, true),
                                    timeout => maps:get(timeout, Opts, ?TIMEOUT)},
                           case py:ensure_venv(Dir, Requirements, Venv) of
                               ok -> file:write_file(Stamp, Wanted);
                               Error -> Error
                           end
                   end
           end,
    case Made of
        ok -> py_import:add_path(dir());
        _ -> Made
    end.

%% @doc Start pool `Name' of `N' contexts of kind `Mode' (the venv at `Venv'
%% made active by ensure_venv/3), and load the model in each and run it once
%% (so that timings leave the load and the first run out): `{ok, Contexts}'.
-spec start_pool(atom(), pos_integer(), atom(), file:filename()) ->
          {ok, [pid()]} | {error, term()}.
start_pool(Name, N, Mode, _Venv) ->
    case py_context_router:start_pool(Name, N, Mode) of
        {ok, Contexts} ->
            Ready = [embed(Ctx, [<<"Warming up.">>]) || Ctx <- Contexts],
            case [E || {error, _} = E <- Ready] of
                [] -> {ok, Contexts};
                [Error | _] -> ok = py_context_router:stop_pool(Name), Error
            end;
        {error, _} = Error ->
            Error
    end.

%% @doc Stop a pool that start_pool/3 started.
-spec stop_pool(atom()) -> ok.
stop_pool(Name) ->
    py_context_router:stop_pool(Name).

%% @doc Unit vectors of `Texts' computed on `Where' (a context or a pool),
%% as one binary of float32 rows (1,536 bytes a text).
-spec embed(pid() | atom(), [binary()]) -> {ok, binary()} | {error, term()}.
embed(Ctx, Texts) when is_pid(Ctx) ->
    py:call(Ctx, minilm, embed_bytes, [Texts], #{timeout => ?TIMEOUT});
embed(Pool, Texts) when is_atom(Pool) ->
    py:call(Pool, minilm, embed_bytes, [Texts], #{}).

%% @doc Embed `Texts' in batches of `Batch' with `Workers' Erlang processes
%% calling pool `Pool', each taking the next batch when it is done with one:
%% `{ok, Matrix, Micros}', `Matrix' the rows of every text in order.
-spec embed_parallel(atom(), [binary()], pos_integer(), pos_integer()) ->
          {ok, binary(), non_neg_integer()} | {error, term()}.
embed_parallel(Pool, Texts, Batch, Workers) ->
    Batches = list_to_tuple(chunks(Texts, Batch)),
    Next = atomics:new(1, []),
    Self = self(),
    T0 = erlang:monotonic_time(microsecond),
    Pids = [spawn_monitor(fun() -> worker(Pool, Batches, Next, Self) end)
            || _ <- lists:seq(1, Workers)],
    Result = gather(Pids, #{}, tuple_size(Batches)),
    Micros = erlang:monotonic_time(microsecond) - T0,
    case Result of
        {ok, Rows} ->
            {ok, iolist_to_binary([maps:get(I, Rows) || I <- lists:seq(1, tuple_size(Batches))]),
             Micros};
        {error, _} = Error ->
            Error
    end.

%% @doc The `K' best documents of each query, best first, as
%% `[{DocumentIndex, Cosine}]' (0-based indices into the rows of `Matrix').
-spec search(pid() | atom(), binary(), [binary()], pos_integer()) ->
          {ok, [[{non_neg_integer(), float()}]]} | {error, term()}.
search(Ctx, Matrix, Queries, K) when is_pid(Ctx) ->
    py:call(Ctx, minilm, search, [{bytes, Matrix}, Queries, K], #{timeout => ?TIMEOUT});
search(Pool, Matrix, Queries, K) when is_atom(Pool) ->
    py:call(Pool, minilm, search, [{bytes, Matrix}, Queries, K], #{}).

%% @doc `N' sentences of the example's corpus (corpus.py), always the same.
-spec documents(pid() | atom(), pos_integer()) -> [binary()].
documents(Where, N) ->
    [Text || {_, Text} <- labelled(Where, N)].

%% @doc `N' sentences of the corpus with their topics, as `{Topic, Text}'.
-spec labelled(pid() | atom(), pos_integer()) -> [{binary(), binary()}].
labelled(Ctx, N) when is_pid(Ctx) ->
    {ok, Pairs} = py:call(Ctx, corpus, labelled, [N]),
    Pairs;
labelled(Pool, N) when is_atom(Pool) ->
    {ok, Pairs} = py:call(Pool, corpus, labelled, [N], #{}),
    Pairs.

%% @doc The example's queries with the topic their hits should have.
-spec queries(pid() | atom()) -> [{binary(), binary()}].
queries(Ctx) when is_pid(Ctx) ->
    {ok, Queries} = py:eval(Ctx, <<"__import__('corpus').QUERIES">>),
    Queries;
queries(Pool) when is_atom(Pool) ->
    queries(py_context_router:get_context(Pool)).

%% @doc The cosine of two unit vectors given as float32 rows (their dot product).
-spec cosine(binary(), binary()) -> float().
cosine(A, B) when byte_size(A) =:= ?ROW_BYTES, byte_size(B) =:= ?ROW_BYTES ->
    dot(A, B, 0.0).

%% Internal.

worker(Pool, Batches, Next, Parent) ->
    I = atomics:add_get(Next, 1, 1),
    case I =< tuple_size(Batches) of
        true ->
            case embed(Pool, element(I, Batches)) of
                {ok, Rows} -> Parent ! {rows, I, Rows}, worker(Pool, Batches, Next, Parent);
                {error, Reason} -> exit({embed_failed, Reason})
            end;
        false ->
            ok
    end.

gather(Pids, Rows, Total) when map_size(Rows) =:= Total ->
    [erlang:demonitor(M, [flush]) || {_, M} <- Pids],
    {ok, Rows};
gather(Pids, Rows, Total) ->
    receive
        {rows, I, Bin} ->
            gather(Pids, Rows#{I => Bin}, Total);
        {'DOWN', _, process, _, normal} ->
            gather(Pids, Rows, Total);
        {'DOWN', _, process, _, Reason} ->
            [exit(P, kill) || {P, _} <- Pids],
            {error, Reason}
    end.

chunks([], _) -> [];
chunks(L, N) when length(L) =< N -> [L];
chunks(L, N) ->
    {H, T} = lists:split(N, L),
    [H | chunks(T, N)].

dot(<<X:32/float-native, A/binary>>, <<Y:32/float-native, B/binary>>, Acc) ->
    dot(A, B, Acc + X * Y);
dot(<<>>, <<>>, Acc) ->
    Acc.
