%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc A real workload: sentence embeddings with all-MiniLM-L6-v2
%% (onnxruntime + tokenizers + numpy, examples/semantic_search/) computed
%% in contexts, and searched. The suite makes the example's venv the way
%% the demo does (semantic_search:ensure_venv/3: `python -m venv' and pip
%% through Erlang ports, once; later runs find it made), then checks that
%% related sentences score higher than unrelated ones, that a search finds
%% the query's topic, that a pool embedding in parallel gives the vectors
%% one context gives, and that the sandbox denies nothing the model does.
%%
%% The contexts are isolated contexts (each a child OS process; numpy,
%% onnxruntime and tokenizers refuse own-GIL sub-interpreters), which the
%% application's registry gives the venv and the example's directory.
-module(py_ml_SUITE).

-include_lib("common_test/include/ct.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1]).
-export([sandbox_allows_the_model/1, related_scores_higher/1, search_finds_the_topic/1,
         pool_matches_one_context/1, bad_input_is_an_error/1]).
-export([log/2]).

-define(MODE, isolated).

all() ->
    [sandbox_allows_the_model, related_scores_higher, search_finds_the_topic,
     pool_matches_one_context, bad_input_is_an_error].

%% The first run on a machine downloads and installs the packages (~60 MB).
suite() ->
    [{timetrap, {minutes, 20}}].

init_per_suite(Config) ->
    Root = root(),
    Example = filename:join([Root, "examples", "semantic_search"]),
    Source = filename:join(Example, "semantic_search.erl"),
    {ok, semantic_search, Bin} = compile:file(Source, [binary, return_errors]),
    {module, semantic_search} = code:load_binary(semantic_search, Source, Bin),
    {ok, _} = application:ensure_all_started(erlang_python),
    Venv = semantic_search:venv_dir(filename:join(Root, "_build")),
    Log = fun(Line) -> ct:log("~ts", [Line]) end,
    ok = semantic_search:ensure_venv(Venv, filename:join(Example, "requirements.txt"),
                                     #{log => Log}),
    [{venv, Venv}, {example, Example} | Config].

end_per_suite(Config) ->
    ok = py:deactivate_venv(),
    ok = py_import:clear_paths(),
    _ = Config,
    ok = application:stop(erlang_python).

%% Cases.

sandbox_allows_the_model(Config) ->
    doc("Loading the model and embedding run in the VM's own sandbox (a worker "
        "context) with no denial (the sandbox reports each one to py_sandbox_log, whose "
        "reports this case collects; a fork shows that it would see them)."),
    ok = logger:add_handler(?MODULE, ?MODULE, #{config => #{pid => self()}}),
    try
        _ = Config,
        {ok, Ctx} = py_context:new(#{mode => worker}),
        {ok, Rows} = semantic_search:embed(Ctx, [<<"The sandbox lets onnxruntime run.">>]),
        1536 = byte_size(Rows),
        [] = denials(),
        {error, {'RuntimeError', _}} = py:eval(Ctx, <<"__import__('os').fork()">>),
        [#{operation := <<"os.fork">>}] = denials(),
        ok = py_context:stop(Ctx)
    after
        logger:remove_handler(?MODULE)
    end.

related_scores_higher(Config) ->
    doc("Sentences that mean the same score higher against each other than against "
        "unrelated ones, and every vector has length 1."),
    Ctx = context(Config),
    Texts = [<<"A cat is sleeping on the sofa.">>,
             <<"The kitten naps on the couch.">>,
             <<"The central bank raised interest rates.">>,
             <<"Borrowing money got more expensive after the rate hike.">>,
             <<"He fixed a bug in the Python code.">>],
    {ok, Rows} = semantic_search:embed(Ctx, Texts),
    [Cat, Kitten, Bank, Rates, Bug] = [V || <<V:1536/binary>> <= Rows],
    [true = abs(semantic_search:cosine(V, V) - 1.0) < 1.0e-4 || V <- [Cat, Kitten, Bank, Rates, Bug]],
    Cos = fun semantic_search:cosine/2,
    ct:log("cat~~kitten ~.3f, bank~~rates ~.3f, cat~~bank ~.3f, cat~~bug ~.3f, bank~~bug ~.3f",
           [Cos(Cat, Kitten), Cos(Bank, Rates), Cos(Cat, Bank), Cos(Cat, Bug), Cos(Bank, Bug)]),
    Related = [Cos(Cat, Kitten), Cos(Bank, Rates)],
    Unrelated = [Cos(Cat, Bank), Cos(Cat, Rates), Cos(Cat, Bug), Cos(Kitten, Bank),
                 Cos(Kitten, Bug), Cos(Bank, Bug), Cos(Rates, Bug)],
    true = lists:min(Related) > lists:max(Unrelated) + 0.2,
    %% minilm.embed gives the same vectors as lists of floats.
    {ok, [List, _]} = py:call(Ctx, minilm, embed, [lists:sublist(Texts, 2)]),
    384 = length(List),
    true = abs(semantic_search:cosine(<< <<F:32/float-native>> || F <- List >>, Cat) - 1.0) < 1.0e-6,
    ok = py_context:stop(Ctx).

search_finds_the_topic(Config) ->
    doc("Over 160 sentences of eight topics (examples/semantic_search/corpus.py), the "
        "three best hits of each of the example's queries are on the query's topic, "
        "best first."),
    Ctx = context(Config),
    Labelled = semantic_search:labelled(Ctx, 160),
    {ok, Matrix} = semantic_search:embed(Ctx, [T || {_, T} <- Labelled]),
    160 = byte_size(Matrix) div 1536,
    Queries = semantic_search:queries(Ctx),
    8 = length(Queries),
    {ok, Hits} = semantic_search:search(Ctx, Matrix, [Q || {Q, _} <- Queries], 3),
    Topics = list_to_tuple([T || {T, _} <- Labelled]),
    lists:foreach(
      fun({{Query, Want}, QHits}) ->
              Got = [{element(I + 1, Topics), Score} || {I, Score} <- QHits],
              ct:log("~ts -> ~p", [Query, Got]),
              [Want, Want, Want] = [T || {T, _} <- Got],
              Scores = [S || {_, S} <- Got],
              Scores = lists:reverse(lists:sort(Scores))
      end, lists:zip(Queries, Hits)),
    ok = py_context:stop(Ctx).

pool_matches_one_context(Config) ->
    doc("Four Erlang processes embedding batches through a pool of two contexts give "
        "the vectors one context gives, in the documents' order."),
    Venv = ?config(venv, Config),
    {ok, [One]} = semantic_search:start_pool(ml_suite_one, 1, ?MODE, Venv),
    {ok, [_, _]} = semantic_search:start_pool(ml_suite_pool, 2, ?MODE, Venv),
    try
        Docs = semantic_search:documents(One, 96),
        {ok, Alone} = semantic_search:embed(One, Docs),
        {ok, Parallel, _Micros} = semantic_search:embed_parallel(ml_suite_pool, Docs, 8, 4),
        true = byte_size(Alone) =:= byte_size(Parallel),
        Pairs = lists:zip([V || <<V:1536/binary>> <= Alone], [V || <<V:1536/binary>> <= Parallel]),
        true = lists:all(fun({A, B}) -> semantic_search:cosine(A, B) > 0.9999 end, Pairs)
    after
        semantic_search:stop_pool(ml_suite_pool),
        semantic_search:stop_pool(ml_suite_one)
    end.

bad_input_is_an_error(Config) ->
    doc("Texts that are not strings and a matrix of the wrong size are Python errors, "
        "and the context goes on serving."),
    Ctx = context(Config),
    {error, {'TypeError', _}} = semantic_search:embed(Ctx, [<<"fine">>, 42]),
    {error, {'TypeError', _}} = py:call(Ctx, minilm, embed_bytes, [<<"not a list">>]),
    {error, {'ValueError', _}} = semantic_search:search(Ctx, <<0:8000>>, [<<"q">>], 3),
    {ok, Rows} = semantic_search:embed(Ctx, [<<"still here">>]),
    1536 = byte_size(Rows),
    ok = py_context:stop(Ctx).

%% logger handler: the sandbox's denials, sent to the case.

%% @private
log(#{msg := {report, #{what := python_sandbox_denied} = Report}}, #{config := #{pid := Pid}}) ->
    Pid ! {?MODULE, denial, Report},
    ok;
log(_Event, _Config) ->
    ok.

%% Internal.

context(_Config) ->
    {ok, Ctx} = py_context:new(#{mode => ?MODE}),
    Ctx.

%% The denials reported so far: py_sandbox_log has handled every report the
%% NIF sent before this call once it answers a call of its own.
denials() ->
    _ = sys:get_state(py_sandbox_log),
    collect([]).

collect(Acc) ->
    receive {?MODULE, denial, Report} -> collect([Report | Acc])
    after 0 -> lists:reverse(Acc)
    end.

root() ->
    {ok, Cwd} = file:get_cwd(),
    find_root(Cwd).

find_root("/") -> erlang:error(no_project_root);
find_root(Dir) ->
    case filelib:is_regular(filename:join(Dir, "rebar.config")) andalso
         filelib:is_dir(filename:join([Dir, "examples", "semantic_search"])) of
        true -> Dir;
        false -> find_root(filename:dirname(Dir))
    end.

doc(Text) ->
    ct:comment("~ts", [Text]).
