%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc Coroutines and code on an asyncio event loop, the erlang_python 4.x
%% task API: create_task/3,4 + await/1,2, run/3,4, spawn_task/3,4, and
%% exec/1,2 and eval/1,2 in a namespace of the caller's own on the loop.
%%
%% A loop is an asyncio loop fed by a channel (c_src/shared/channel.c): a
%% task is one message queued from the caller's scheduler, which the loop's
%% thread takes in batches (priv/python/erlang/_evloop.py); no context
%% thread and no Erlang process sit in between. The result comes back as
%% `{async_result, Ref, {ok, Value} | {error, Reason}}' (await/1,2 receives
%% it; 4.x's shapes, docs/event_loop.md). The default loop, started on
%% first use, is the shared loop of py:async_call/3,4; py_event_loop_pool
%% has more, each on a thread of its own.
%%
%% This gen_server starts the default loop and watches the processes that
%% have a namespace on a loop, to drop it when they die.
-module(py_event_loop).
-behaviour(gen_server).

-export([get_loop/0, run/3, run/4, create_task/3, create_task/4, await/1, await/2,
         spawn_task/3, spawn_task/4, exec/1, exec/2, eval/1, eval/2]).
-export([create_task_on/5, spawn_task_on/5, start_link/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).
-export_type([loop/0]).

-type loop() :: reference().
-type name() :: atom() | binary() | string().

-define(LOOP, {?MODULE, default}).
-define(NAME, <<"default">>).
-define(TIMEOUT, 5000).
-define(WATCHED, '$py_event_loop_watched').

%% API.

%% @doc The default loop (started on first use): `{ok, Loop}'.
-spec get_loop() -> {ok, loop()} | {error, term()}.
get_loop() ->
    case persistent_term:get(?LOOP, undefined) of
        undefined ->
            try gen_server:call(?MODULE, start, 30000)
            catch exit:{noproc, _} -> {error, not_running}
            end;
        Ch ->
            {ok, Ch}
    end.

%% @doc Run `Module.Func(*Args)' and wait for its result (5 s).
-spec run(name(), name(), list()) -> {ok, term()} | {error, term()}.
run(Module, Func, Args) ->
    run(Module, Func, Args, #{}).

%% @doc run/3 with options `timeout' (ms, default 5000) and `kwargs'. At
%% the timeout the result is `{error, timeout}' and the task goes on.
-spec run(name(), name(), list(), #{timeout => timeout(), kwargs => map()}) ->
          {ok, term()} | {error, term()}.
run(Module, Func, Args, Opts) when is_map(Opts) ->
    Timeout = maps:get(timeout, Opts, ?TIMEOUT),
    await(create_task(Module, Func, Args, maps:get(kwargs, Opts, #{})), Timeout);
run(_Module, _Func, _Args, Opts) ->
    erlang:error({badarg, {opts, Opts}}).

%% @doc Start `Module.Func(*Args)' on the default loop; the result comes as
%% `{async_result, Ref, Result}'. A coroutine function runs as a task, a
%% plain function is called on the loop. `` '__main__' '' is the caller's
%% namespace: what py:exec/1 defined on its context, then what exec/1,2
%% defined on the loop.
-spec create_task(name(), name(), list()) -> reference().
create_task(Module, Func, Args) ->
    create_task(Module, Func, Args, #{}).

%% @doc create_task/3 with keyword arguments.
-spec create_task(name(), name(), list(), map()) -> reference().
create_task(Module, Func, Args, Kwargs) ->
    create_task_on(loop(), Module, Func, Args, Kwargs).

%% @doc Wait (5 s) for the result of create_task/3,4.
-spec await(reference()) -> {ok, term()} | {error, term()}.
await(Ref) ->
    await(Ref, ?TIMEOUT).

%% @doc Wait for the result of create_task/3,4: `{error, timeout}' after
%% Timeout ms (the task goes on; its result then comes as a message).
-spec await(reference(), timeout()) -> {ok, term()} | {error, term()}.
await(Ref, Timeout) when is_reference(Ref),
                         (Timeout =:= infinity orelse (is_integer(Timeout) andalso Timeout >= 0)) ->
    receive
        {async_result, Ref, Result} -> Result
    after Timeout ->
        {error, timeout}
    end;
await(Ref, Timeout) when is_reference(Ref) ->
    erlang:error({badarg, {timeout, Timeout}});
await(Ref, _) ->
    erlang:error({badarg, {ref, Ref}}).

%% @doc Start `Module.Func(*Args)' and forget its result.
-spec spawn_task(name(), name(), list()) -> ok.
spawn_task(Module, Func, Args) ->
    spawn_task(Module, Func, Args, #{}).

%% @doc spawn_task/3 with keyword arguments.
-spec spawn_task(name(), name(), list(), map()) -> ok.
spawn_task(Module, Func, Args, Kwargs) ->
    spawn_task_on(loop(), Module, Func, Args, Kwargs).

%% @doc Execute statements in the caller's namespace on the default loop.
-spec exec(iodata()) -> ok | {error, term()}.
exec(Code) ->
    exec(loop(), Code).

%% @doc exec/1 on a given loop (get_loop/0, py_event_loop_pool:get_loop/0).
-spec exec(loop(), iodata()) -> ok | {error, term()}.
exec(Loop, Code) ->
    on_loop(Loop, exec, code(Code)).

%% @doc Evaluate an expression in the caller's namespace on the default loop.
-spec eval(iodata()) -> {ok, term()} | {error, term()}.
eval(Code) ->
    eval(loop(), Code).

%% @doc eval/1 on a given loop.
-spec eval(loop(), iodata()) -> {ok, term()} | {error, term()}.
eval(Loop, Code) ->
    on_loop(Loop, eval, code(Code)).

%% @doc create_task/4 on a given loop (py_event_loop_pool uses it).
-spec create_task_on(loop(), name(), name(), list(), map()) -> reference().
create_task_on(Loop, Module, Func, Args, Kwargs) ->
    Ref = make_ref(),
    ok = submit(Loop, self(), Ref, Module, Func, Args, Kwargs),
    Ref.

%% @doc spawn_task/4 on a given loop.
-spec spawn_task_on(loop(), name(), name(), list(), map()) -> ok.
spawn_task_on(Loop, Module, Func, Args, Kwargs) ->
    submit(Loop, none, make_ref(), Module, Func, Args, Kwargs).

%% @private
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% Internal (client side).

loop() ->
    case get_loop() of
        {ok, Ch} -> Ch;
        {error, Reason} -> erlang:error({event_loop, Reason})
    end.

%% A task: one message on the loop's channel; `'__main__'' first goes to
%% the caller's context, whose namespace py:exec filled.
%% Atom names travel as atoms (Python caches their str).
submit(Loop, Caller, Ref, Module, Func, Args, Kwargs) ->
    M = py_request:callee(module, Module),
    F = py_request:callee(function, Func),
    A = py_request:args(Args),
    Kw = py_request:kwargs(Kwargs),
    case M =:= '__main__' orelse M =:= <<"__main__">> of
        true -> main_task(Loop, Caller, Ref, py_request:name(function, F), A, Kw);
        false -> queued(Caller, Ref, py_shared:channel_send(Loop, {task, Caller, Ref, M, F, A, Kw}))
    end.

queued(_Caller, _Ref, ok) -> ok;
queued(Caller, Ref, Busy) -> fail(Caller, Ref, Busy).

fail(none, _Ref, _) -> ok;
fail(Caller, Ref, {error, _} = Error) -> Caller ! {async_result, Ref, Error}, ok.

main_task(Loop, Caller, Ref, F, A, Kw) ->
    Name = loop_name(Loop),
    Payload = {eval, <<"__import__('erlang._evloop', fromlist=['_']).submit_main(globals(), "
                       "*__py_evloop__)">>,
               #{'__py_evloop__' => [Name, Caller, Ref, F, A, Kw]}, term},
    case py_router:route() of
        none -> fail(Caller, Ref, {error, not_running});
        {_, Ctx} ->
            case py_context:cast(Ctx, Payload) of
                ok -> ok;
                {error, _} = Error -> fail(Caller, Ref, Error)
            end
    end.

%% The name the Python side knows a loop by.
loop_name(Loop) ->
    case persistent_term:get(?LOOP, undefined) of
        Loop -> ?NAME;
        _ -> py_event_loop_pool:loop_name(Loop)
    end.

on_loop(Loop, Kind, Code) ->
    ok = watch(Loop),
    Ref = make_ref(),
    Mon = case whereis(?MODULE) of
              undefined -> make_ref();
              Pid -> erlang:monitor(process, Pid)
          end,
    case py_shared:channel_send(Loop, {Kind, self(), Ref, Code}) of
        ok ->
            receive
                {py_loop_reply, Ref, Result} ->
                    erlang:demonitor(Mon, [flush]),
                    Result;
                {'DOWN', Mon, process, _, _} ->
                    {error, loop_stopped}
            end;
        {error, _} = Error ->
            erlang:demonitor(Mon, [flush]),
            Error;
        busy ->
            erlang:demonitor(Mon, [flush]),
            {error, busy}
    end.

%% Namespaces on a loop are dropped when their process dies.
watch(Loop) ->
    Watched = case get(?WATCHED) of undefined -> []; W -> W end,
    case lists:member(Loop, Watched) of
        true -> ok;
        false ->
            gen_server:cast(?MODULE, {watch, self(), Loop}),
            put(?WATCHED, [Loop | Watched]),
            ok
    end.

code(C) when is_binary(C) -> C;
code(C) ->
    try iolist_to_binary(C)
    catch error:badarg -> erlang:error({badarg, {code, C}})
    end.

%% gen_server.

%% @private
-spec init([]) -> {ok, map()}.
init([]) ->
    process_flag(trap_exit, true),
    {ok, #{loop => undefined, watched => #{}}}.

%% @private
-spec handle_call(term(), gen_server:from(), map()) -> {reply, term(), map()}.
handle_call(start, _From, State = #{loop := undefined}) ->
    {ok, Ch} = py_shared:channel_new(0, false),
    case py:call('erlang._evloop', attach_shared, [Ch, ?NAME]) of
        {ok, ok} ->
            persistent_term:put(?LOOP, Ch),
            {reply, {ok, Ch}, State#{loop := Ch}};
        {error, _} = Error ->
            ok = py_shared:channel_close(Ch),
            {reply, Error, State}
    end;
handle_call(start, _From, State = #{loop := Ch}) ->
    {reply, {ok, Ch}, State};
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_call}, State}.

%% @private
-spec handle_cast(term(), map()) -> {noreply, map()}.
handle_cast({watch, Pid, Loop}, State = #{watched := W}) ->
    Entry = case W of
                #{Pid := {Mon, Loops}} -> {Mon, lists:usort([Loop | Loops])};
                #{} -> {erlang:monitor(process, Pid), [Loop]}
            end,
    {noreply, State#{watched := W#{Pid => Entry}}};
handle_cast(_Msg, State) ->
    {noreply, State}.

%% @private
-spec handle_info(term(), map()) -> {noreply, map()}.
handle_info({'DOWN', _, process, Pid, _}, State = #{watched := W}) ->
    case maps:take(Pid, W) of
        {{_, Loops}, W2} ->
            _ = [py_shared:channel_send(L, {drop, Pid}) || L <- Loops],
            {noreply, State#{watched := W2}};
        error ->
            {noreply, State}
    end;
handle_info(_Msg, State) ->
    {noreply, State}.

%% @private
%% The default loop is the shared loop: it stops serving this channel, and
%% goes on for py:async_call until py_async stops it.
-spec terminate(term(), map()) -> ok.
terminate(_Reason, #{loop := Loop}) ->
    _ = persistent_term:erase(?LOOP),
    _ = case Loop of
            undefined -> ok;
            _ -> py_shared:channel_close(Loop)
        end,
    ok.
