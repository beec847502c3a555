%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc How many py:call/3-5 run at once (the 4.x `py_semaphore' API).
%%
%% App env `max_concurrent' (default `infinity'; a positive integer to
%% none). A call takes a slot before it is submitted and gives it back when
%% its result is in; when none is free it waits (polling with a backoff of
%% 1 to 50 ms plus jitter) up to the call's own timeout, then returns
%% `{error, {overloaded, Current, Max}}'.
%%
%% No process sits on the hot path: the slots taken are one atomics
%% counter, and each caller also counts its own in an atomics counter that
%% py_context_router watches (one monitor per process, made on its first
%% call): when a caller dies holding slots (killed mid-call), they come
%% back.
-module(py_semaphore).

-export([acquire/1, release/0, max_concurrent/0, current/0, set_max_concurrent/1]).
-export([take/2, give/1, exempt/0]).
-export_type([token/0]).

%% What give/1 needs to give a slot back.
-type token() :: none | {atomics:atomics_ref(), atomics:atomics_ref()}.

-define(SLOTS, '$py_slots').
-define(MAX_BACKOFF, 50).

%% @doc Take a slot for the caller, waiting at most Timeout ms:
%% `{error, {overloaded, Current, Max}}' if none came free.
-spec acquire(timeout()) -> ok | {error, {overloaded, non_neg_integer(), pos_integer()}}.
acquire(Timeout) when Timeout =:= infinity; is_integer(Timeout), Timeout >= 0 ->
    case take(py_context_router:limit(), Timeout) of
        {ok, _, _} -> ok;
        Overloaded -> Overloaded
    end;
acquire(Timeout) ->
    erlang:error({badarg, {timeout, Timeout}}).

%% @doc Give back a slot the caller took with acquire/1 (`ok' also when it
%% holds none).
-spec release() -> ok.
release() ->
    case get(?SLOTS) of
        undefined ->
            ok;
        exempt ->
            ok;
        {Global, Own} ->
            case atomics:get(Own, 1) of
                N when N > 0 -> give({Global, Own});
                _ -> ok
            end
    end.

%% @doc The maximum number of calls at once, or `infinity'.
-spec max_concurrent() -> pos_integer() | infinity.
max_concurrent() ->
    case py_context_router:limit() of
        infinity -> infinity;
        {_, Max} -> Max
    end.

%% @doc How many slots are taken (0 without a limit).
-spec current() -> non_neg_integer().
current() ->
    case py_context_router:limit() of
        infinity -> 0;
        {Global, _} -> max(0, atomics:get(Global, 1))
    end.

%% @doc Change the maximum (`infinity': no limit). Calls running keep their
%% slots; calls waiting see the new maximum at their next try.
-spec set_max_concurrent(pos_integer() | infinity) -> ok | {error, not_running}.
set_max_concurrent(Max) when Max =:= infinity; is_integer(Max), Max > 0 ->
    py_context_router:set_limit(Max);
set_max_concurrent(Max) ->
    erlang:error({badarg, {max_concurrent, Max}}).

%% @private
%% @doc Take a slot of Limit within Timeout: the time left of Timeout and
%% the token for give/1.
-spec take(py_context_router:limit(), timeout()) ->
          {ok, timeout(), token()} | {error, {overloaded, non_neg_integer(), pos_integer()}}.
take(infinity, Timeout) ->
    {ok, Timeout, none};
take({Global, Max}, Timeout) ->
    case get(?SLOTS) of
        {Global, Own} -> take(Global, Own, Max, Timeout);
        exempt -> {ok, Timeout, none};
        _ -> take(Global, own(Global), Max, Timeout)
    end.

take(Global, Own, Max, Timeout) ->
    %% Own first: a caller killed between the two is given back a slot it
    %% did not take (one extra call may run) rather than leaking one.
    atomics:add(Own, 1, 1),
    case atomics:add_get(Global, 1, 1) of
        N when N =< Max ->
            {ok, Timeout, {Global, Own}};
        N ->
            back_out(Global, Own),
            case Timeout of
                0 -> {error, {overloaded, N - 1, Max}};
                _ -> wait(Timeout, deadline(Timeout), 1)
            end
    end.

%% @private
%% @doc The calling process takes no slots: it runs Erlang functions called
%% from Python (a callback helper, py_callback's processes), whose Python
%% calls run inside a request that already holds one; taking another could
%% wait for a slot its own caller holds.
-spec exempt() -> ok.
exempt() ->
    _ = put(?SLOTS, exempt),
    ok.

%% @private
%% @doc Give back the slot of take/2.
-spec give(token()) -> ok.
give(none) ->
    ok;
give({Global, Own}) ->
    atomics:sub(Global, 1, 1),
    atomics:sub(Own, 1, 1).

%% Internal.

back_out(Global, Own) ->
    atomics:sub(Global, 1, 1),
    atomics:sub(Own, 1, 1).

%% The caller's own counter (watched by py_context_router).
own(Global) ->
    case get(?SLOTS) of
        {Global, Own} ->
            Own;
        _ ->
            Own = case py_context_router:holder(Global) of
                      {ok, O} -> O;
                      {error, _} -> atomics:new(1, [{signed, true}]) %% stopping
                  end,
            _ = put(?SLOTS, {Global, Own}),
            Own
    end.

deadline(infinity) -> infinity;
deadline(T) -> erlang:monotonic_time(millisecond) + T.

wait(Timeout, Deadline, Backoff) ->
    Now = erlang:monotonic_time(millisecond),
    Left = case Deadline of infinity -> infinity; _ -> Deadline - Now end,
    Limit = py_context_router:limit(),
    case Left of
        L when is_integer(L), L =< 0 ->
            overloaded(Limit);
        _ ->
            Pause = min(Backoff + rand:uniform(Backoff) - 1, Left),
            receive after Pause -> ok end,
            case py_context_router:limit() of
                infinity ->
                    {ok, left(Deadline, Timeout), none};
                {Global, Max} = L2 ->
                    Own = case get(?SLOTS) of
                              {Global, O} -> O;
                              _ -> own(Global)
                          end,
                    atomics:add(Own, 1, 1),
                    case atomics:add_get(Global, 1, 1) of
                        N when N =< Max ->
                            {ok, left(Deadline, Timeout), {Global, Own}};
                        _ ->
                            back_out(Global, Own),
                            _ = L2,
                            wait(Timeout, Deadline, min(Backoff * 2, ?MAX_BACKOFF))
                    end
            end
    end.

overloaded(infinity) -> {error, {overloaded, 0, 0}};
overloaded({Global, Max}) -> {error, {overloaded, max(0, atomics:get(Global, 1)), Max}}.

left(infinity, _) -> infinity;
left(Deadline, _) -> max(0, Deadline - erlang:monotonic_time(millisecond)).
