%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc How a call of the public API (py) reaches a context: its arguments
%% checked and made into a request, sent to the registered pool within the
%% semaphore or to the caller's context (once more on a new one when that
%% context has stopped), to an explicit context or an object's, or spread
%% over the default contexts (py:parallel/1). py_event_loop checks its
%% arguments with the same functions.
-module(py_request).

-export([dispatch/4, limited/4, run/2, with_route/1, on/3, on_ref/2, parallel/2,
         call_payload/5, callee/2, eval_payload/2, exec_opts/1, call_opts/1,
         name/2, args/1, kwargs/1, code/1, timeout/1]).

%% The API's default timeout (py's own).
-define(TIMEOUT, 30000).

%% @doc A module call: to the registered pool and within the semaphore, unless
%% nothing is registered and there is no limit (one persistent_term read).
-spec dispatch(term(), term(), py_context:payload(), timeout()) -> term().
dispatch(Module, Func, Payload, Timeout) ->
    case py_context_router:plan(Module, Func) of
        direct -> run(Payload, Timeout);
        {Pool, Limit} -> limited(Pool, Limit, Payload, Timeout)
    end.

%% @doc A request on pool Pool, within the semaphore Limit.
-spec limited(atom(), py_context_router:limit(), py_context:payload(), timeout()) -> term().
limited(Pool, Limit, Payload, Timeout) ->
    case py_semaphore:take(Limit, Timeout) of
        {ok, Left, Token} ->
            try on_pool(Pool, Payload, Left)
            after py_semaphore:give(Token)
            end;
        Overloaded ->
            Overloaded
    end.

on_pool(default, Payload, Timeout) ->
    run(Payload, Timeout);
on_pool(Pool, Payload, Timeout) ->
    case py_context_router:route(Pool) of
        none ->
            {error, {pool_not_started, Pool}};
        {_, Ctx} ->
            case py_context:request(Ctx, Payload, Timeout) of
                {error, closed} ->
                    ok = py_context_router:forget(Pool),
                    case py_context_router:route(Pool) of
                        none -> {error, {pool_not_started, Pool}};
                        {_, Ctx2} -> py_context:request(Ctx2, Payload, Timeout)
                    end;
                {error, {nodedown, _}} = Down ->
                    %% The request may have run: not retried; the next call
                    %% of this process chooses a context that runs.
                    ok = py_context_router:forget(Pool),
                    Down;
                Result ->
                    Result
            end
    end.

%% @doc with_route/1 for a request, without making a fun for every call.
-spec run(py_context:payload(), timeout()) -> term().
run(Payload, Timeout) ->
    case py_router:route() of
        none ->
            {error, not_running};
        {_, Ctx} ->
            case py_context:request(Ctx, Payload, Timeout) of
                {error, closed} = Closed ->
                    retry_closed(Closed, fun(C) -> py_context:request(C, Payload, Timeout) end);
                Result ->
                    Result
            end
    end.

%% @doc Run on the caller's context; if that context has stopped, forget it and
%% run once on a new one (a request refused as closed never ran).
-spec with_route(fun((py_context:ctx()) -> T)) -> T | {error, not_running}.
with_route(Fun) ->
    case py_router:route() of
        none -> {error, not_running};
        {_, Ctx} -> retry_closed(Fun(Ctx), Fun)
    end.

retry_closed({error, closed}, Fun) ->
    ok = py_router:forget(),
    case py_router:route() of
        none -> {error, not_running};
        {_, Ctx} -> Fun(Ctx)
    end;
retry_closed(Result, _Fun) ->
    Result.

%% @doc A request on the explicit context Pid (local or remote).
-spec on(pid(), py_context:payload(), timeout()) -> term().
on(Pid, Payload, Timeout) ->
    py_context:request_pid(Pid, Payload, Timeout).

%% @doc A request on the context of a Python object reference.
-spec on_ref(term(), py_context:payload()) -> term().
on_ref(Ref, Payload) ->
    case py_context:is_ref(Ref) of
        false -> erlang:error({badarg, {ref, Ref}});
        true ->
            case py_context:for_ref(Ref) of
                {ok, Ctx} ->
                    case py_context:request(Ctx, Payload, ?TIMEOUT) of
                        {error, closed} -> run(Payload, ?TIMEOUT);
                        Result -> Result
                    end;
                {error, closed} ->
                    {error, closed}
            end
    end.

%% @doc Run calls side by side, one per default context in turn, within
%% Timeout ms in all (py:parallel/1).
-spec parallel([py_context:payload()], timeout()) -> {ok, list()} | {error, term()}.
parallel(Payloads, Timeout) ->
    case [Ctx || {_, Ctx} <- py_router:defaults()] of
        [] -> {error, not_running};
        Ctxs ->
            Deadline = erlang:monotonic_time(millisecond) + Timeout,
            gather(submit_spread(Payloads, Ctxs, Ctxs, 1, #{}), #{}, Deadline)
    end.

%% Pending: Ref => {Index, Ctx}, or Pending#{error => E} when a submit
%% failed.
submit_spread([], _, _, _, Pending) ->
    Pending;
submit_spread(Payloads, [], All, I, Pending) ->
    submit_spread(Payloads, All, All, I, Pending);
submit_spread([P | Ps], [Ctx | Ctxs], All, I, Pending) ->
    case py_context:async(Ctx, py_parallel, P) of
        {ok, Ref} -> submit_spread(Ps, Ctxs, All, I + 1, Pending#{Ref => {I, Ctx}});
        {error, _} = Error -> cancel_all(Pending), Error
    end.

gather({error, _} = Error, _Done, _Deadline) ->
    Error;
gather(Pending, Done, _Deadline) when map_size(Pending) =:= 0 ->
    {ok, [V || {_, V} <- lists:sort(maps:to_list(Done))]};
gather(Pending, Done, Deadline) ->
    Left = max(0, Deadline - erlang:monotonic_time(millisecond)),
    receive
        {py_parallel, Ref, R} when is_map_key(Ref, Pending) ->
            {{I, _}, Rest} = maps:take(Ref, Pending),
            case py_context:result(R) of
                {ok, Value} -> gather(Rest, Done#{I => Value}, Deadline);
                {error, _} = Error -> cancel_all(Rest), Error
            end
    after Left ->
        cancel_all(Pending),
        {error, timeout}
    end.

%% Interrupt the calls still running; a reply already on its way is taken
%% out of the mailbox.
cancel_all(Pending) ->
    maps:foreach(fun(Ref, {_, Ctx}) ->
                         case py_context:cancel(Ctx, Ref) of
                             cancelled -> ok;
                             not_found -> receive {py_parallel, Ref, _} -> ok end
                         end
                 end, Pending).

%% @doc The request of a call. Module and function atoms travel as atoms (the NIF caches their str). A
%% call with no keyword arguments whose result is a term travels without
%% them: a smaller payload is fewer cache lines for the context thread to
%% fetch from the caller's core.
-spec call_payload(term(), term(), term(), term(), term | ref | atom() | tuple()) ->
          py_context:payload().
call_payload(Module, Func, Args, Kwargs, term) when Kwargs =:= #{} ->
    {call, callee(module, Module), callee(function, Func), args(Args)};
call_payload(Module, Func, Args, Kwargs, Return) ->
    {call, callee(module, Module), callee(function, Func), args(Args), kwargs(Kwargs), Return}.

%% @doc A module or function name as a request carries it.
-spec callee(atom(), term()) -> atom() | binary().
callee(_, A) when is_atom(A) -> A;
callee(What, N) -> name(What, N).

%% @doc The request of eval(Code, Locals).
-spec eval_payload(term(), term()) -> py_context:payload().
eval_payload(Code, Locals) when is_map(Locals) ->
    {eval, code(Code), Locals, term};
eval_payload(_, Locals) ->
    erlang:error({badarg, {locals, Locals}}).

%% @doc The options of py:exec/2,3, checked, with their defaults.
-spec exec_opts(map()) -> #{timeout := timeout()}.
exec_opts(Opts) ->
    maps:fold(fun(timeout, V, Acc) -> Acc#{timeout => timeout(V)};
                 (K, V, _) -> erlang:error({badarg, {K, V}})
              end, #{timeout => ?TIMEOUT}, Opts).

%% @doc The options of py:call/5 on an explicit context, checked.
-spec call_opts(map()) -> #{kwargs := map(), timeout := timeout(), return := term | ref}.
call_opts(Opts) ->
    maps:fold(fun(kwargs, V, Acc) -> Acc#{kwargs => kwargs(V)};
                 (timeout, V, Acc) -> Acc#{timeout => timeout(V)};
                 (return, V, Acc) when V =:= term; V =:= ref -> Acc#{return => V};
                 (K, V, _) -> erlang:error({badarg, {K, V}})
              end, #{kwargs => #{}, timeout => infinity, return => term}, Opts).

%% @doc A name (atom, binary or string) as a UTF-8 binary; badarg
%% `{What, Name}' otherwise.
-spec name(atom(), term()) -> binary().
name(_, A) when is_atom(A) -> atom_to_binary(A, utf8);
name(_, B) when is_binary(B) -> B;
name(What, L) when is_list(L) ->
    case unicode:characters_to_binary(L) of
        B when is_binary(B) -> B;
        _ -> erlang:error({badarg, {What, L}})
    end;
name(What, V) -> erlang:error({badarg, {What, V}}).

%% @doc An argument list, checked.
-spec args(term()) -> list().
args(A) when is_list(A) -> A;
args(A) -> erlang:error({badarg, {args, A}}).

%% @doc Keyword arguments, checked.
-spec kwargs(term()) -> map().
kwargs(K) when is_map(K) -> K;
kwargs(K) -> erlang:error({badarg, {kwargs, K}}).

%% @doc Python source (a binary or string) as a binary, checked.
-spec code(term()) -> binary().
code(C) when is_atom(C) -> erlang:error({badarg, {code, C}});
code(C) -> name(code, C).

%% @doc A timeout (ms or `infinity'), checked.
-spec timeout(term()) -> timeout().
timeout(infinity) -> infinity;
timeout(T) when is_integer(T), T >= 0 -> T;
timeout(T) -> erlang:error({badarg, {timeout, T}}).
