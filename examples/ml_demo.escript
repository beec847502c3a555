#!/usr/bin/env escript
%%! -noshell
%% Semantic search with a real model: Erlang processes embed a few thousand
%% sentences in parallel through a pool of contexts (all-MiniLM-L6-v2 on
%% onnxruntime, examples/semantic_search/minilm.py), then answer queries
%% with their best hits and cosine scores, and print sentences/s for one
%% context, for the pool, and for plain Python in one process.
%% Run it with `make demo-ml'; the first run makes a venv under _build/.
%% Nothing touches the network after that.
-mode(compile).

%% The pool's kind: worker contexts share the main interpreter (and one
%% GIL); onnxruntime and the tokenizer release the GIL while they compute.
-define(POOL_MODE, isolated).
-define(DOCS, 3000).
-define(BENCH, 1024).
-define(BATCH, 64).
-define(K, 3).

main(_) ->
    Root = filename:dirname(filename:dirname(filename:absname(escript:script_name()))),
    [code:add_patha(D) || D <- filelib:wildcard(filename:join(Root, "_build/default/lib/*/ebin"))],
    Example = filename:join([Root, "examples", "semantic_search"]),
    {ok, semantic_search, Bin} = compile:file(filename:join(Example, "semantic_search.erl"),
                                              [binary, return_errors]),
    {module, semantic_search} =
        code:load_binary(semantic_search, filename:join(Example, "semantic_search.erl"), Bin),
    {ok, _} = application:ensure_all_started(erlang_python),
    {ok, Version} = py:version(),
    io:format("Python ~ts embedded in Erlang/OTP ~s, ~b schedulers~n~n",
              [hd(string:split(Version, " ")), erlang:system_info(otp_release),
               erlang:system_info(schedulers)]),

    Venv = semantic_search:venv_dir(filename:join(Root, "_build")),
    io:format("== venv ~ts~n", [Venv]),
    Log = fun(Line) -> io:format("  $ ~ts~n", [Line]) end,
    ok = check(semantic_search:ensure_venv(Venv, filename:join(Example, "requirements.txt"),
                                           #{log => Log})),

    PoolSize = max(2, erlang:system_info(schedulers)),
    {ok, _} = check(semantic_search:start_pool(ml_one, 1, worker, Venv)),
    {ok, _} = check(semantic_search:start_pool(ml_pool, PoolSize, ?POOL_MODE, Venv)),
    Labelled = semantic_search:labelled(ml_one, ?DOCS),
    Docs = [Text || {_, Text} <- Labelled],

    Workers = 2 * PoolSize,
    io:format("~n== index: ~b sentences, ~b Erlang processes, a pool of ~b ~p contexts~n",
              [length(Docs), Workers, PoolSize, ?POOL_MODE]),
    {ok, Matrix, Micros} = semantic_search:embed_parallel(ml_pool, Docs, ?BATCH, Workers),
    io:format("  ~b vectors (~b KB) in ~.1f s: ~b sentences/s~n",
              [byte_size(Matrix) div 1536, byte_size(Matrix) div 1024, Micros / 1.0e6,
               rate(length(Docs), Micros)]),

    Queries = semantic_search:queries(ml_one),
    {ok, Hits} = semantic_search:search(ml_pool, Matrix, [Q || {Q, _} <- Queries], ?K),
    Topics = list_to_tuple([T || {T, _} <- Labelled]),
    Texts = list_to_tuple(Docs),
    io:format("~n== queries (top ~b, cosine)~n", [?K]),
    Agree = lists:sum(
              [begin
                   io:format("~n  ~ts~n", [Q]),
                   lists:sum([begin
                                  Topic = element(I + 1, Topics),
                                  io:format("    ~.3f  [~ts] ~ts~n", [Score, Topic, element(I + 1, Texts)]),
                                  case Topic of Want -> 1; _ -> 0 end
                              end || {I, Score} <- QHits])
               end || {{Q, Want}, QHits} <- lists:zip(Queries, Hits)]),
    io:format("~n  ~b of ~b hits are on the query's topic~n", [Agree, ?K * length(Queries)]),

    Bench = lists:sublist(Docs, ?BENCH),
    io:format("~n== embeddings/s: the same ~b sentences, batches of ~b~n", [?BENCH, ?BATCH]),
    {ok, _, One} = semantic_search:embed_parallel(ml_one, Bench, ?BATCH, 1),
    {ok, _, Pool} = semantic_search:embed_parallel(ml_pool, Bench, ?BATCH, Workers),
    Plain = plain_python(Venv, Example),
    io:format("  ~-44s ~8b sentences/s~n",
              ["one worker context (1 Erlang process)", rate(?BENCH, One)]),
    io:format("  ~-44s ~8b sentences/s  (~.2fx one context)~n",
              [io_lib:format("pool of ~b ~p contexts (~b processes)", [PoolSize, ?POOL_MODE, Workers]),
               rate(?BENCH, Pool), One / Pool]),
    io:format("  ~-44s ~8b sentences/s  (one context takes ~.1f% ~s per sentence)~n",
              ["plain Python, one process", rate(?BENCH, Plain), abs(100 * (One / Plain - 1)),
               case One >= Plain of true -> "more"; false -> "less" end]),
    ok = semantic_search:stop_pool(ml_pool),
    ok = semantic_search:stop_pool(ml_one),
    ok = application:stop(erlang_python).

rate(N, Micros) ->
    round(N * 1.0e6 / Micros).

check(ok) -> ok;
check({ok, _} = Ok) -> Ok;
check({error, Reason}) ->
    io:format(standard_error, "ml_demo: ~tp~n", [Reason]),
    halt(1).

%% baseline.py in the venv's Python, through a port: microseconds for ?BENCH sentences.
plain_python(Venv, Example) ->
    Port = open_port({spawn_executable, filename:join([Venv, "bin", "python"])},
                     [{args, [filename:join(Example, "baseline.py"),
                              integer_to_list(?BENCH), integer_to_list(?BATCH)]},
                      {cd, Example}, exit_status, binary, stderr_to_stdout,
                      {env, [{"HF_HUB_OFFLINE", "1"}, {"TOKENIZERS_PARALLELISM", "false"}]}]),
    Out = collect(Port, []),
    {match, [Seconds]} = re:run(Out, <<"\"seconds\": ([0-9.eE+-]+)">>,
                                [{capture, all_but_first, binary}]),
    round(binary_to_float(Seconds) * 1.0e6).

collect(Port, Acc) ->
    receive
        {Port, {data, Data}} -> collect(Port, [Data | Acc]);
        {Port, {exit_status, 0}} -> iolist_to_binary(lists:reverse(Acc));
        {Port, {exit_status, Code}} ->
            io:format(standard_error, "baseline.py exited ~b:~n~ts~n",
                      [Code, lists:reverse(Acc)]),
            halt(1)
    after 600000 -> error(baseline_timeout)
    end.
