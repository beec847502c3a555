%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc Shared dicts: py:shared_dict_* and erlang.SharedDict
%% (c_src/shared/sdict.c, c_src/pymod/data_py.c,
%% priv/python/erlang/_shared_dict.py).
-module(py_shared_dict_SUITE).

-include_lib("common_test/include/ct.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1]).
-export([erlang_api/1, python_mapping/1, lossless_terms/1, destroyed/1, owner_death/1,
         bad_input/1, threads_and_contexts/1, owngil_context/1, many_keys/1]).

suite() -> [{timetrap, {seconds, 60}}].

all() ->
    [erlang_api, python_mapping, lossless_terms, destroyed, owner_death, bad_input,
     threads_and_contexts, owngil_context, many_keys].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(erlang_python),
    Config.

end_per_suite(_Config) ->
    ok = application:stop(erlang_python).

erlang_api(_Config) ->
    {ok, SD} = py:shared_dict_new(),
    true = is_reference(SD),
    undefined = py:shared_dict_get(SD, <<"missing">>),
    fallback = py:shared_dict_get(SD, <<"missing">>, fallback),
    ok = py:shared_dict_set(SD, <<"config">>, #{host => <<"localhost">>, port => 8080}),
    #{host := <<"localhost">>, port := 8080} = py:shared_dict_get(SD, <<"config">>),
    ok = py:shared_dict_set(SD, <<"config">>, replaced),
    replaced = py:shared_dict_get(SD, <<"config">>),
    ok = py:shared_dict_set(SD, {tuple, 1}, [1, 2]),
    [1, 2] = py:shared_dict_get(SD, {tuple, 1}),
    [{tuple, 1}, <<"config">>] = lists:sort(py:shared_dict_keys(SD)),
    ok = py:shared_dict_del(SD, <<"config">>),
    ok = py:shared_dict_del(SD, <<"config">>), %% absent: ok
    [{tuple, 1}] = py:shared_dict_keys(SD),
    ok = py:shared_dict_destroy(SD),
    ok = py:shared_dict_destroy(SD). %% idempotent

python_mapping(_Config) ->
    {ok, SD} = py:shared_dict_new(),
    ok = py:shared_dict_set(SD, <<"config">>, #{<<"host">> => <<"h">>}),
    ok = py:exec(<<"
from erlang import SharedDict
def use(handle):
    sd = SharedDict(handle)
    out = [sd['config']['host'], 'config' in sd, 'nope' in sd, sd.get('nope'),
           sd.get('nope', 7), len(sd)]
    sd['result'] = {'status': 'ok', 'count': 42}
    sd['gone'] = 1
    del sd['gone']
    try:
        sd['nope']
    except KeyError:
        out.append('keyerror')
    try:
        del sd['nope']
    except KeyError:
        out.append('delkeyerror')
    out.append(sorted(sd.keys()))
    out.append(sd.setdefault('new', 5))
    out.append(sd.pop('new'))
    out.append(sd.pop('new', 'dflt'))
    sd.update({'a': 1}, b=2)
    out.append(sorted(sd.items()))
    out.append(SharedDict(sd) == sd)
    return out
">>),
    {ok, [<<"h">>, true, false, none, 7, 1, <<"keyerror">>, <<"delkeyerror">>,
          [<<"config">>, <<"result">>], 5, 5, <<"dflt">>, Items, true]} =
        py:call('__main__', use, [SD]),
    [{<<"a">>, 1}, {<<"b">>, 2}, {<<"config">>, _}, {<<"result">>, _}] = Items,
    #{<<"status">> := <<"ok">>, <<"count">> := 42} = py:shared_dict_get(SD, <<"result">>).

lossless_terms(_Config) ->
    {ok, SD} = py:shared_dict_new(),
    Self = self(),
    Ref = make_ref(),
    Big = 1 bsl 100,
    ok = py:shared_dict_set(SD, atoms, {ok, Self, Ref, Big, [a, <<"b">>]}),
    %% Through Python and back: atoms stay atoms, pids and refs the same.
    {ok, {ok, Self, Ref, Big, [a, <<"b">>]}} =
        py:eval(<<"__import__('erlang').SharedDict(h)[__import__('erlang').Atom('atoms')]">>,
                #{h => SD}),
    {ok, none} = py:eval(<<"erlang.SharedDict(h).__setitem__(erlang.Atom('k'), (erlang.Atom('v'), 1.5))">>,
                         #{h => SD}),
    {v, 1.5} = py:shared_dict_get(SD, k).

destroyed(_Config) ->
    {ok, SD} = py:shared_dict_new(),
    ok = py:shared_dict_set(SD, <<"k">>, 1),
    ok = py:exec(<<"def keep(h):\n    global kept\n    kept = erlang.SharedDict(h)\n">>),
    {ok, none} = py:call('__main__', keep, [SD]),
    ok = py:shared_dict_destroy(SD),
    {'EXIT', {{badarg, shared_dict_destroyed}, _}} = (catch py:shared_dict_get(SD, <<"k">>)),
    {'EXIT', {{badarg, shared_dict_destroyed}, _}} = (catch py:shared_dict_set(SD, <<"k">>, 2)),
    {'EXIT', {{badarg, shared_dict_destroyed}, _}} = (catch py:shared_dict_del(SD, <<"k">>)),
    {'EXIT', {{badarg, shared_dict_destroyed}, _}} = (catch py:shared_dict_keys(SD)),
    {error, {'RuntimeError', "the shared dict has been destroyed"}} = py:eval(<<"kept['k']">>),
    {error, {'RuntimeError', _}} = py:eval(<<"kept.__setitem__('k', 1)">>),
    {error, {'RuntimeError', _}} = py:eval(<<"len(kept)">>),
    %% Destroyed from Python: Erlang sees it too.
    {ok, SD2} = py:shared_dict_new(),
    {ok, none} = py:eval(<<"erlang.SharedDict(h).destroy()">>, #{h => SD2}),
    {'EXIT', {{badarg, shared_dict_destroyed}, _}} = (catch py:shared_dict_get(SD2, <<"k">>)),
    ok.

owner_death(_Config) ->
    Self = self(),
    {Owner, Mon} = spawn_monitor(fun() ->
                                         {ok, SD} = py:shared_dict_new(),
                                         ok = py:shared_dict_set(SD, <<"k">>, 1),
                                         Self ! {sd, SD}
                                 end),
    SD = receive {sd, D} -> D end,
    receive {'DOWN', Mon, process, Owner, _} -> ok end,
    %% The monitor's down callback runs as the owner exits; wait for it.
    wait_destroyed(SD, 100).

wait_destroyed(SD, 0) -> ct:fail({not_destroyed, SD});
wait_destroyed(SD, N) ->
    case catch py:shared_dict_get(SD, <<"k">>) of
        {'EXIT', {{badarg, shared_dict_destroyed}, _}} -> ok;
        1 -> erlang:yield(), wait_destroyed(SD, N - 1)
    end.

bad_input(_Config) ->
    {'EXIT', {badarg, _}} = (catch py:shared_dict_get(not_a_dict, <<"k">>)),
    {'EXIT', {badarg, _}} = (catch py:shared_dict_set(make_ref(), <<"k">>, 1)),
    {'EXIT', {badarg, _}} = (catch py:shared_dict_del(<<"x">>, <<"k">>)),
    {'EXIT', {badarg, _}} = (catch py:shared_dict_keys(self())),
    {'EXIT', {badarg, _}} = (catch py:shared_dict_destroy(1)),
    {ok, Ch} = py_channel:new(),
    {'EXIT', {badarg, _}} = (catch py:shared_dict_get(Ch, <<"k">>)),
    {error, {'TypeError', _}} = py:eval(<<"erlang.SharedDict(42)">>),
    {error, {'TypeError', _}} = py:eval(<<"erlang.SharedDict(c)">>, #{c => Ch}),
    {ok, SD} = py:shared_dict_new(),
    %% An unhashable key is fine (it is a term); a key with no term form is not.
    {ok, none} = py:eval(<<"erlang.SharedDict(h).__setitem__(('a', [1]), 1)">>, #{h => SD}),
    1 = py:shared_dict_get(SD, {<<"a">>, [1]}),
    %% A value with no term form is held as an object reference (on the
    %% caller's context), as everywhere; from a thread of no request it
    %% cannot be held.
    {ok, none} = py:eval(<<"erlang.SharedDict(h).__setitem__('k', object())">>, #{h => SD}),
    true = py:is_ref(py:shared_dict_get(SD, <<"k">>)),
    ok = py:exec(<<"
import threading
def from_thread(h):
    out = []
    def run():
        try:
            erlang.SharedDict(h)['k2'] = object()
        except TypeError as e:
            out.append('TypeError')
    t = threading.Thread(target=run)
    t.start(); t.join()
    return out
">>),
    {ok, [<<"TypeError">>]} = py:call('__main__', from_thread, [SD]),
    ok.

threads_and_contexts(_Config) ->
    {ok, SD} = py:shared_dict_new(),
    ok = py:exec(<<"
import threading
def hammer(h, n):
    sd = erlang.SharedDict(h)
    def work(t):
        for i in range(n):
            sd[(t, i)] = i
    ts = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in ts: t.start()
    for t in ts: t.join()
    return len(sd)
">>),
    {ok, 400} = py:call('__main__', hammer, [SD, 100]),
    %% Every context sees the same entries.
    Ctxs = [py:context(N) || N <- lists:seq(1, length(py_router:defaults()))],
    [{ok, 400}] = lists:usort([py:eval(Ctx, <<"len(erlang.SharedDict(h))">>, #{h => SD})
                               || Ctx <- Ctxs]),
    99 = py:shared_dict_get(SD, {3, 99}).

owngil_context(_Config) ->
    case py:subinterp_supported() of
        false -> {skip, "own-GIL contexts need Python 3.12"};
        true ->
            {ok, SD} = py:shared_dict_new(),
            ok = py:shared_dict_set(SD, <<"from_erlang">>, [1, two, <<"three">>]),
            {ok, Ctx} = py_context:new(#{mode => owngil}),
            try
                {ok, [1, two, <<"three">>]} =
                    py:eval(Ctx, <<"__import__('erlang').SharedDict(h)['from_erlang']">>, #{h => SD}),
                {ok, none} = py:eval(Ctx, <<"__import__('erlang').SharedDict(h).__setitem__('from_owngil', {'x': 1})">>,
                                     #{h => SD}),
                #{<<"x">> := 1} = py:shared_dict_get(SD, <<"from_owngil">>),
                {ok, #{<<"x">> := 1}} = py:eval(<<"erlang.SharedDict(h)['from_owngil']">>, #{h => SD})
            after
                py_context:stop(Ctx)
            end
    end.

many_keys(_Config) ->
    {ok, SD} = py:shared_dict_new(),
    [ok = py:shared_dict_set(SD, I, I * I) || I <- lists:seq(1, 10000)],
    10000 = length(py:shared_dict_keys(SD)),
    {ok, 10000} = py:eval(<<"len(erlang.SharedDict(h))">>, #{h => SD}),
    [ok = py:shared_dict_del(SD, I) || I <- lists:seq(1, 10000, 2)],
    5000 = length(py:shared_dict_keys(SD)),
    100 = py:shared_dict_get(SD, 10),
    undefined = py:shared_dict_get(SD, 9).
