%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc State shared by Erlang and Python (py_state): the Erlang API, the
%% Python API (erlang.state_*), both directions, and atomic counters.
-module(py_state_SUITE).

-include_lib("common_test/include/ct.hrl").

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1, init_per_testcase/2]).
-export([erlang_api/0, erlang_api/1, python_api/0, python_api/1,
         both_ways/0, both_ways/1, counters_concurrent/0, counters_concurrent/1,
         mixed_counters/0, mixed_counters/1, not_a_counter/0, not_a_counter/1]).

suite() -> [{timetrap, {minutes, 2}}].

all() ->
    [erlang_api, python_api, both_ways, counters_concurrent, mixed_counters, not_a_counter].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(erlang_python),
    Config.

end_per_suite(_Config) ->
    ok = application:stop(erlang_python).

init_per_testcase(_Case, Config) ->
    ok = py:state_clear(),
    Config.

%% Cases.

erlang_api() ->
    [{doc, "state_store/fetch/remove/keys/clear keep any term under any term key; "
      "state_incr/decr (1 or N) create a missing counter at 0 and return the new value."}].
erlang_api(_Config) ->
    {error, not_found} = py:state_fetch(missing),
    Value = #{list => [1, 2.5, <<"three">>], pid => self(), ref => make_ref()},
    ok = py:state_store({user, 42}, Value),
    {ok, Value} = py:state_fetch({user, 42}),
    ok = py:state_store({user, 42}, replaced),
    {ok, replaced} = py:state_fetch({user, 42}),
    ok = py:state_store(<<"bin">>, 1),
    [{user, 42}, <<"bin">>] = lists:sort(py:state_keys()),
    ok = py:state_remove({user, 42}),
    ok = py:state_remove({user, 42}),
    {error, not_found} = py:state_fetch({user, 42}),
    1 = py:state_incr(hits),
    2 = py:state_incr(hits),
    12 = py:state_incr(hits, 10),
    11 = py:state_decr(hits),
    1 = py:state_decr(hits, 10),
    -5 = py:state_decr(fresh, 5),
    {ok, 1} = py:state_fetch(hits),
    Big = 1 bsl 70,
    Big = py:state_incr(big, Big),
    ok = py:state_clear(),
    [] = py:state_keys(),
    {error, not_found} = py:state_fetch(hits),
    ok.

python_api() ->
    [{doc, "erlang.state_set/state_get(key, default=None)/state_delete/state_keys/"
      "state_incr/state_decr from Python, including from a Python thread outside "
      "any request."}].
python_api(_Config) ->
    ok = py:exec(<<"import erlang, threading\n"
                   "def scenario():\n"
                   "    out = {}\n"
                   "    out['missing'] = erlang.state_get('k')\n"
                   "    out['default'] = erlang.state_get('k', 'dflt')\n"
                   "    erlang.state_set('k', {'a': [1, 2]})\n"
                   "    out['got'] = erlang.state_get('k', 'dflt')\n"
                   "    erlang.state_set('none', None)\n"
                   "    out['stored_none'] = erlang.state_get('none', 'dflt')\n"
                   "    out['keys'] = sorted(erlang.state_keys())\n"
                   "    erlang.state_delete('k')\n"
                   "    out['deleted'] = erlang.state_get('k', 'gone')\n"
                   "    out['incr'] = [erlang.state_incr('c'), erlang.state_incr('c', 5),\n"
                   "                   erlang.state_decr('c'), erlang.state_decr('c', 10)]\n"
                   "    box = []\n"
                   "    t = threading.Thread(target=lambda: box.append(erlang.state_incr('c', 100)))\n"
                   "    t.start()\n"
                   "    t.join()\n"
                   "    out['thread'] = box\n"
                   "    return out\n">>),
    {ok, Out} = py:call('__main__', scenario, []),
    #{<<"missing">> := none, <<"default">> := <<"dflt">>,
      <<"got">> := #{<<"a">> := [1, 2]}, <<"stored_none">> := none,
      <<"keys">> := [<<"k">>, <<"none">>], <<"deleted">> := <<"gone">>,
      <<"incr">> := [1, 6, 5, -5], <<"thread">> := [95]} = Out,
    {ok, 95} = py:state_fetch(<<"c">>),
    ok.

both_ways() ->
    [{doc, "A value stored in Erlang is read in Python and one stored in Python is read "
      "in Erlang, with the usual conversion of keys and values (atom <-> erlang.Atom, "
      "binary <-> str, tuples)."}].
both_ways(_Config) ->
    ok = py:state_store(config, #{<<"depth">> => 3, mode => fast}),
    ok = py:state_store({job, 7}, [<<"a">>, 1.5]),
    ok = py:exec(<<"import erlang\n"
                   "c = erlang.state_get(erlang.Atom('config'))\n"
                   "j = erlang.state_get((erlang.Atom('job'), 7))\n">>),
    {ok, {3, fast, [<<"a">>, 1.5]}} = py:eval(<<"(c['depth'], c[erlang.Atom('mode')], j)">>),
    {ok, none} = py:eval(<<"__import__('erlang').state_set('from_py', "
                           "{'n': 1, 't': (1, 'x'), 'b': b'\\xff'})">>),
    {ok, #{<<"n">> := 1, <<"t">> := {1, <<"x">>}, <<"b">> := <<255>>}} =
        py:state_fetch(<<"from_py">>),
    {ok, none} = py:eval(<<"__import__('erlang').state_set(__import__('erlang').Atom('k'), 2)">>),
    {ok, 2} = py:state_fetch(k),
    true = lists:member(k, py:state_keys()),
    ok.

counters_concurrent() ->
    [{doc, "8 Erlang processes x 10,000 state_incr = 80,000, and every return value "
      "1..80,000 is handed out exactly once (increments are atomic)."}].
counters_concurrent(_Config) ->
    Values = run_all(8, fun() -> [py:state_incr(counter) || _ <- lists:seq(1, 10000)] end),
    80000 = py:state_incr(counter, 0),
    {ok, 80000} = py:state_fetch(counter),
    Expected = lists:seq(1, 80000),
    Expected = lists:sort(lists:append(Values)),
    ok.

mixed_counters() ->
    [{doc, "Erlang processes (state_incr/decr) and Python code in several processes "
      "(erlang.state_incr/decr, on their own contexts) change one counter at once; "
      "none is lost."}].
mixed_counters(_Config) ->
    Code = <<"import erlang\n"
             "def bump(n):\n"
             "    for _ in range(n):\n"
             "        erlang.state_incr('mixed', 3)\n"
             "        erlang.state_decr('mixed')\n">>,
    Py = fun() -> ok = py:exec(Code), {ok, none} = py:call('__main__', bump, [2000]), py end,
    Erl = fun() -> [py:state_incr(<<"mixed">>, 2) || _ <- lists:seq(1, 5000)], erl end,
    Decr = fun() -> [py:state_decr(<<"mixed">>) || _ <- lists:seq(1, 5000)], decr end,
    Done = run_all([Py, Py, Py, Py, Erl, Erl, Decr]),
    [decr, erl, erl, py, py, py, py] = lists:sort(Done),
    %% 4 x 2000 x (3 - 1) + 2 x 5000 x 2 - 5000
    {ok, 31000} = py:state_fetch(<<"mixed">>),
    ok.

not_a_counter() ->
    [{doc, "Incrementing a key that holds a non-integer is an error (badarg in Erlang, "
      "ErlangError in Python) and leaves the value alone; a non-integer amount is badarg."}].
not_a_counter(_Config) ->
    ok = py:state_store(<<"name">>, <<"text">>),
    {'EXIT', {{badarg, {not_a_counter, <<"name">>}}, _}} = (catch py:state_incr(<<"name">>)),
    {'EXIT', {{badarg, _}, _}} = (catch py:state_decr(<<"name">>, 2)),
    {'EXIT', {{badarg, _}, _}} = (catch py:state_incr(n, 1.5)),
    {'EXIT', {{badarg, _}, _}} = (catch py:state_decr(n, one)),
    {error, not_found} = py:state_fetch(n),
    {ok, {error, true}} = python_incr_error(),
    {ok, <<"text">>} = py:state_fetch(<<"name">>),
    ok.

%% Internal.

python_incr_error() ->
    ok = py:exec(<<"import erlang\n"
                   "def incr_fails():\n"
                   "    try:\n"
                   "        erlang.state_incr('name')\n"
                   "    except erlang.ErlangError as e:\n"
                   "        return (e.cls, 'not_a_counter' in str(e))\n">>),
    py:call('__main__', incr_fails, []).

run_all(N, Fun) ->
    run_all(lists:duplicate(N, Fun)).

%% Run the funs in parallel processes; their results, in order.
run_all(Funs) ->
    Parent = self(),
    Workers = [spawn_monitor(fun() -> Parent ! {self(), F()} end) || F <- Funs],
    [receive
         {Pid, Result} -> erlang:demonitor(Mon, [flush]), Result;
         {'DOWN', Mon, process, Pid, Reason} -> ct:fail({worker_died, Reason})
     after 60000 -> ct:fail(worker_timeout)
     end || {Pid, Mon} <- Workers].
