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
%% The venv is made by ensure_venv/3 through Erlang ports (`python -m venv',
%% then pip), never from inside the embedded interpreter, whose sandbox
%% refuses to start processes. py:ensure_venv/3 does the same; the one thing
%% this needs that it has not got is pip's `--no-deps' (see requirements.txt).
-module(semantic_search).

-export([dir/0, python/0, venv_dir/1, ensure_venv/3, use_venv/2,
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
%% is there already with the same requirements: `ok', or `{error, Reason}'
%% with py:ensure_venv/3's shapes (`{exit_code, Code, Output}',
%% `{executable_not_found, Exe}', `{requirements_not_found, File}',
%% `{timeout, Exe}'). Options: `python' (the embedded Python), `no_deps'
%% (pip's `--no-deps', default `true'), `timeout' (ms per program, default
%% 600000), `log' (a fun called with a line before each program runs).
-spec ensure_venv(file:filename(), file:filename(), map()) -> ok | {error, term()}.
ensure_venv(Dir, Requirements, Opts) ->
    Python = maps:get(python, Opts, python()),
    Log = maps:get(log, Opts, fun(_) -> ok end),
    Timeout = maps:get(timeout, Opts, ?TIMEOUT),
    Stamp = filename:join(Dir, ".requirements"),
    case file:read_file(Requirements) of
        {error, _} ->
            {error, {requirements_not_found, unicode:characters_to_binary(Requirements)}};
        {ok, Wanted} ->
            case file:read_file(Stamp) of
                {ok, Wanted} ->
                    ok;
                _ ->
                    VenvPython = filename:join([Dir, "bin", "python"]),
                    NoDeps = [["--no-deps"] || maps:get(no_deps, Opts, true)],
                    Steps = [{Python, ["-m", "venv", Dir]},
                             {VenvPython, ["-m", "pip", "install", "--disable-pip-version-check",
                                           "-q" | lists:append(NoDeps)] ++ ["-r", Requirements]}],
                    run_steps(Steps, Log, Timeout, fun() -> file:write_file(Stamp, Wanted) end)
            end
    end.

%% @doc Make the contexts use the venv at `Dir' and the example's modules:
%% its site-packages go first on `sys.path' (with its `.pth' files), then
%% the example's directory. Worker contexts share one `sys.path' (the main
%% interpreter's); a context of another kind has its own, so this runs on
%% each context.
-spec use_venv(pid(), file:filename()) -> ok | {error, term()}.
use_venv(Ctx, Dir) ->
    Site = site_packages(Dir),
    Venv = unicode:characters_to_binary(filename:absname(Dir)),
    Example = unicode:characters_to_binary(dir()),
    Steps = [{<<"__import__('site').addsitedir(d)">>, Site},
             %% addsitedir appends: a stable sort moves the venv's entries first.
             {<<"__import__('sys').path.sort(key=lambda p: not p.startswith(d))">>, Venv},
             {<<"d in __import__('sys').path or __import__('sys').path.insert(0, d)">>, Example}],
    lists:foldl(fun({Code, D}, ok) ->
                        case py:eval(Ctx, Code, #{d => D}) of
                            {ok, _} -> ok;
                            Error -> Error
                        end;
                   (_, Error) ->
                        Error
                end, ok, Steps).

%% @doc Start pool `Name' of `N' contexts of kind `Mode', make them use the
%% venv at `Venv', and load the model in each and run it once (so that
%% timings leave the load and the first run out): `{ok, Contexts}'.
-spec start_pool(atom(), pos_integer(), atom(), file:filename()) ->
          {ok, [pid()]} | {error, term()}.
start_pool(Name, N, Mode, Venv) ->
    case py_context_router:start_pool(Name, N, Mode) of
        {ok, Contexts} ->
            Ready = [case use_venv(Ctx, Venv) of
                         ok -> embed(Ctx, [<<"Warming up.">>]);
                         Error -> Error
                     end || Ctx <- Contexts],
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

site_packages(Dir) ->
    {ok, {Major, Minor, _}} = py_context:python_version(),
    Site = filename:join([filename:absname(Dir), "lib",
                          io_lib:format("python~b.~b", [Major, Minor]), "site-packages"]),
    unicode:characters_to_binary(Site).

run_steps([], _Log, _Timeout, Done) ->
    Done();
run_steps([{Exe, Args} | Rest], Log, Timeout, Done) ->
    Log(lists:join(" ", [Exe | Args])),
    case run(Exe, Args, Timeout) of
        ok -> run_steps(Rest, Log, Timeout, Done);
        {error, _} = Error -> Error
    end.

%% A program through a port (no shell): ok, or its exit code and output.
run(Exe, Args, Timeout) ->
    case filelib:is_regular(Exe) of
        false ->
            {error, {executable_not_found, unicode:characters_to_binary(Exe)}};
        true ->
            Port = open_port({spawn_executable, Exe},
                             [{args, Args}, exit_status, binary, stderr_to_stdout, hide]),
            collect(Port, Exe, Timeout, [])
    end.

collect(Port, Exe, Timeout, Acc) ->
    receive
        {Port, {data, Data}} -> collect(Port, Exe, Timeout, [Data | Acc]);
        {Port, {exit_status, 0}} -> ok;
        {Port, {exit_status, Code}} ->
            {error, {exit_code, Code, iolist_to_binary(lists:reverse(Acc))}}
    after Timeout ->
        catch port_close(Port),
        {error, {timeout, unicode:characters_to_binary(Exe)}}
    end.
