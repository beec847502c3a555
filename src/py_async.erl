%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc Coroutines from Erlang: the work behind py:async_call/3,4,
%% py:async_await/1,2 and py:async_gather/1,2, and the process that cancels
%% the calls of callers that die.
%%
%% A call is a cast to the caller's context, which runs
%% `erlang._async.submit': the function is resolved there and handed to the
%% shared asyncio loop (priv/python/erlang/_loop.py) on its own thread. The
%% result comes back straight from that thread as
%% `{py_async, Ref, {ok, Value} | {error, Reason}}'. No Erlang process sits
%% on that path.
%%
%% On an isolated context the call runs on the child's own loop, and Ref is
%% an alias of the caller's (`alias([reply])'), to which the child sends the
%% result: a timeout drops the alias, so that a result sent later is dropped
%% by the VM, and tells the child to cancel the task (py_isolated:
%% async_cancel/2) without waiting for it, since the child reads that only
%% between its requests.
%%
%% This gen_server does the rest: it monitors every process that has made an
%% async call (once per process) and, when one dies, cancels its calls; and
%% it owns a small context of its own (`control') on which cancellations run,
%% so that a busy default context never delays a timeout.
-module(py_async).
-behaviour(gen_server).

-export([call/4, await/2, gather/2, start_link/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-define(CONTROL, {?MODULE, control}).
-define(WATCHER, '$py_async_watcher').
%% How long a cancellation may wait for the control context.
-define(CANCEL_TIMEOUT, 5000).
%% How long stopping waits for the shared loop (it waits 10 s for tasks).
-define(STOP_TIMEOUT, 15000).

%% API.

%% @doc Start `Module.Func(*Args, **Kwargs)' on the shared loop; its result
%% comes as `{py_async, Ref, Result}'. Arguments are already checked.
-spec call(binary(), binary(), list(), map()) -> reference().
call(Module, Func, Args, Kwargs) ->
    ok = watch(),
    submit(fun(Ctx) -> payload(Module, Func, Args, Kwargs, Ctx) end, true).

%% @doc Wait for the result of call/4. On timeout the call is cancelled (its
%% coroutine gets `CancelledError', its `finally' runs) and no message of it
%% is left in the mailbox.
-spec await(reference(), timeout()) -> {ok, term()} | {error, term()}.
await(Ref, Timeout) ->
    receive
        {py_async, Ref, Result} -> Result
    after Timeout ->
        case cancel([Ref]) of
            [] -> {error, timeout};
            %% Finished meanwhile (its message is here) or never submitted.
            _ -> receive {py_async, Ref, Result} -> Result after 0 -> {error, timeout} end
        end
    end.

%% @doc Run calls side by side; `{ok, Results}' in order, or, as soon as one
%% fails, `{error, {N, Call, Reason}}' (N counts from 1) with the others
%% cancelled; `{error, timeout}' with all of them cancelled.
-spec gather([{binary(), binary(), list(), map(), term()}], timeout()) ->
          {ok, [term()]} | {error, term()}.
gather(Calls, Timeout) ->
    Deadline = case Timeout of
                   infinity -> infinity;
                   _ -> erlang:monotonic_time(millisecond) + Timeout
               end,
    {Pending, _} = lists:foldl(fun({M, F, A, Kw, Orig}, {Acc, N}) ->
                                       {Acc#{call(M, F, A, Kw) => {N, Orig}}, N + 1}
                               end, {#{}, 1}, Calls),
    collect(Pending, #{}, length(Calls), Deadline).

%% @private
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% Internal (client side).

%% The call's Ref and the request that submits it on Ctx: on an isolated
%% context Ref is an alias the result is sent to.
payload(Module, Func, Args, Kwargs, Ctx) ->
    {Ref, Alias} = case Ctx of
                       {py_isolated, _, _} -> {alias([reply]), true};
                       _ -> {make_ref(), false}
                   end,
    {Ref, payload(Module, Func, [Ref, Module, Func, Args, Kwargs, Alias])}.

payload(<<"__main__">>, Func, [Ref, _, _, Args, Kwargs, Alias]) ->
    %% Eval runs in the caller's namespace, where exec/1 defined Func.
    {eval, <<"__import__('erlang._async', fromlist=['_']).submit_main(globals(), "
             "*__py_async__)">>, #{'__py_async__' => [Ref, Func, Args, Kwargs, Alias]}, term};
payload(_Module, _Func, SubmitArgs) ->
    {call, <<"erlang._async">>, <<"submit">>, SubmitArgs, #{}, term}.

%% A cast to the caller's context; once more on a new one if it has stopped.
%% The call's Ref (its result message says why it failed, if it did).
submit(Make, Retry) ->
    case py_router:route() of
        none ->
            failed(make_ref(), not_running);
        {_, Ctx} ->
            {Ref, Payload} = Make(Ctx),
            case py_context:cast(Ctx, Payload) of
                ok ->
                    Ref;
                {error, closed} when Retry ->
                    _ = unalias(Ref),
                    ok = py_router:forget(),
                    submit(Make, false);
                {error, Reason} ->
                    _ = unalias(Ref),
                    failed(Ref, Reason)
            end
    end.

failed(Ref, Reason) ->
    self() ! {py_async, Ref, {error, Reason}},
    Ref.

%% Ask py_async to monitor the caller, once per caller (and py_async).
watch() ->
    case whereis(?MODULE) of
        undefined -> ok;
        Pid ->
            case get(?WATCHER) of
                Pid -> ok;
                _ ->
                    gen_server:cast(Pid, {watch, self()}),
                    put(?WATCHER, Pid),
                    ok
            end
    end.

%% Cancel calls; the refs whose result may be in the mailbox already (or
%% will never come). An isolated context's call whose alias is still active
%% can no longer send its result once the alias is dropped: the child is
%% told to cancel it and is not waited for. The others run on the shared
%% loop (or have answered already) and are cancelled from the control
%% context.
cancel(Refs) ->
    {Dropped, Others} = lists:partition(fun erlang:unalias/1, Refs),
    _ = Dropped =/= [] andalso cancel_isolated(Dropped),
    case Others of
        [] -> [];
        _ -> case control(cancel_many, [Others]) of
                 {ok, NotFound} when is_list(NotFound) -> NotFound;
                 _ -> Others
             end
    end.

cancel_isolated(Refs) ->
    case py_router:route() of
        {_, {py_isolated, _, _} = Ctx} -> py_isolated:async_cancel(Ctx, Refs);
        _ -> ok  % its context has stopped, and its child with it
    end.

%% Run erlang._async.Fun(*Args) on the control context.
control(Fun, Args) ->
    control(Fun, Args, <<"erlang._async">>, ?CANCEL_TIMEOUT).

control(Fun, Args, Module, Timeout) ->
    Payload = {call, Module, atom_to_binary(Fun), Args, #{}, term},
    case persistent_term:get(?CONTROL, undefined) of
        undefined -> {error, not_running};
        Ctx -> py_context:request(Ctx, Payload, Timeout)
    end.

collect(Pending, Done, N, _Deadline) when map_size(Pending) =:= 0 ->
    {ok, [maps:get(I, Done) || I <- lists:seq(1, N)]};
collect(Pending, Done, N, Deadline) ->
    receive
        {py_async, Ref, Result} when is_map_key(Ref, Pending) ->
            {{I, Call}, Rest} = maps:take(Ref, Pending),
            case Result of
                {ok, Value} ->
                    collect(Rest, Done#{I => Value}, N, Deadline);
                {error, Reason} ->
                    cancel_all(Rest),
                    {error, {I, Call, Reason}}
            end
    after remaining(Deadline) ->
        cancel_all(Pending),
        {error, timeout}
    end.

%% Cancel calls; flush the messages of those that finished meanwhile.
cancel_all(Pending) ->
    Refs = maps:keys(Pending),
    Missing = cancel(Refs),
    _ = [receive {py_async, R, _} -> ok after 0 -> ok end || R <- Missing],
    ok.

remaining(infinity) -> infinity;
remaining(Deadline) -> max(0, Deadline - erlang:monotonic_time(millisecond)).

%% gen_server.

%% @private
-spec init([]) -> {ok, #{atom() => term()}} | {stop, term()}.
init([]) ->
    process_flag(trap_exit, true),
    %% Cancellations run on a context of their own, with no spinning: they
    %% are rare, and must not queue behind the callers' own work.
    case py_context:new(#{spin_us => 0}) of
        {ok, Pid} ->
            {ok, Ctx} = py_context:resource(Pid),
            _ = erlang:monitor(process, Pid),
            persistent_term:put(?CONTROL, Ctx),
            {ok, #{control => Pid, watched => #{}}};
        {error, Reason} ->
            {stop, {control_context, Reason}}
    end.

%% @private
-spec handle_call(term(), gen_server:from(), map()) -> {reply, term(), map()}.
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_call}, State}.

%% @private
-spec handle_cast(term(), map()) -> {noreply, map()}.
handle_cast({watch, Pid}, State = #{watched := W}) when is_map_key(Pid, W) ->
    {noreply, State};
handle_cast({watch, Pid}, State = #{watched := W}) ->
    {noreply, State#{watched := W#{Pid => erlang:monitor(process, Pid)}}};
handle_cast(_Msg, State) ->
    {noreply, State}.

%% @private
-spec handle_info(term(), map()) -> {noreply, map()} | {stop, term(), map()}.
handle_info({'DOWN', _, process, Pid, Reason}, State = #{control := Pid}) ->
    {stop, {control_context_down, Reason}, State};
handle_info({'DOWN', _, process, Pid, _}, State = #{watched := W}) ->
    Payload = {call, <<"erlang._async">>, <<"cancel_owner">>, [Pid], #{}, term},
    _ = py_context:cast(persistent_term:get(?CONTROL), Payload),
    {noreply, State#{watched := maps:remove(Pid, W)}};
handle_info(_Msg, State) ->
    {noreply, State}.

%% @private
%% Stopping (the application stops, or the contexts restart): the shared
%% loop stops now, while Erlang still runs, so that the finally clauses of
%% the tasks it cancels can still call and send to Erlang.
-spec terminate(term(), map()) -> ok.
terminate(_Reason, #{control := Pid}) ->
    _ = control(stop_shared_loop, [], <<"erlang._loop">>, ?STOP_TIMEOUT),
    _ = persistent_term:erase(?CONTROL),
    _ = py_context:stop(Pid),
    ok.
