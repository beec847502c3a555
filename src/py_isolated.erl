%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc An isolated context: the same API as a worker context, with its
%% interpreter in a child OS process (`py_context:new(#{mode => isolated})').
%%
%% This gen_server owns the child: it starts it with open_port (no shell;
%% `python -u -m erlang._child Socket', priv/python/erlang/_child.py), logs
%% its stdout and stderr, restarts it when it dies, and stops requests: a
%% request still queued is dropped, a running one gets a STOP frame and
%% SIGINT (`erlang.CallInterrupted' in Python, inside blocking C calls too),
%% and a child that has not let it go `kill_after' ms later gets SIGKILL and
%% is restarted.
%%
%% The child has two sockets (frames `<<Kind:8, A:64, B:64, Body/binary>>'
%% after a 4-byte length, Body in external term format): this process
%% reads the control one (callbacks, sends, streams, the replies of casts
%% and async calls, large replies); the callers write their requests to the
%% fast one themselves and read their small replies from it
%% (py_isolated_caller), so that a synchronous call costs no process switch
%% on the VM's side. Each caller keeps its own deadline, and tells this
%% process of a request it gave up. The requests in flight are in an ETS
%% table (py_isolated.hrl) that this process creates and owns. The child
%% runs requests in the order they come, a callback that calls Python
%% again being a nested request.
%%
%% A child's death (a segfault, abort, `os._exit', an OOM kill, a resource
%% limit) answers every request in flight with `{error, {child_exited,
%% Reason}}' (`{signal, 11}' for a segfault) at once; the next child starts
%% (Python state gone) unless `restart' is false or `max_restarts' restarts
%% happened within `restart_period' ms, when the context stops with
%% `{child_exited, Reason}'.
-module(py_isolated).
-behaviour(gen_server).

-export([request/3, cast/2, async/3, cancel/2, async_cancel/2, stream_credit/3, load/1,
         is_ref/1, ref_context/1, publish/1, run_callback/3,
         names_ref/1]).
-export([start_link/1, interrupt/1, kill/1, child_info/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).
-export_type([ctx/0]).

-include_lib("kernel/include/logger.hrl").
-include("py_isolated.hrl").

%% An isolated context as py_router keeps it: the server, its load
%% (atomics: requests in flight, when it last answered or became busy, the last
%% request id) and its table of requests in flight (py_isolated.hrl).
-opaque ctx() :: {py_isolated, pid(), {atomics:atomics_ref(), ets:tid()}}.

-define(SIGINT, 2).
-define(SIGKILL, 9).
-define(REF_TAG, '$erlang_python_ref').

%% API: the caller's side (py_isolated_caller).

%% @doc Run a request and wait for its result (in the caller's process).
-spec request(ctx(), py_context:payload(), timeout()) -> term().
request(Ctx, Payload, Timeout) ->
    py_isolated_caller:request(Ctx, Payload, Timeout).

%% @doc Run a request and forget its result.
-spec cast(ctx(), py_context:payload()) -> ok | {error, closed}.
cast(Ctx, Payload) ->
    case py_isolated_caller:submit(Ctx, none, make_ref(), Payload) of
        {ok, _} -> ok;
        Error -> Error
    end.

%% @doc Run a request; its result comes as `{Tag, Ref, Result}' (stream
%% items as `{py_stream, Ref, {data, Item}}' first).
-spec async(ctx(), atom(), py_context:payload()) -> {ok, reference()} | {error, closed}.
async(Ctx, Tag, Payload) ->
    py_isolated_caller:submit(Ctx, Tag, make_ref(), Payload).

%% @doc Cancel a request made with async/3: `cancelled' (no reply will come)
%% or `not_found'.
-spec cancel(ctx(), reference()) -> cancelled | not_found.
cancel({py_isolated, Pid, _}, Ref) ->
    try gen_server:call(Pid, {cancel, self(), Ref})
    catch exit:_ -> not_found
    end.

%% @doc Cancel calls made with py:async_call/3,4 that the context's child
%% runs on its own asyncio loop (erlang._async), and answer nothing: their
%% outcomes go to aliases the caller has dropped already. Written by the
%% caller on the socket its requests go to, the cancellation runs in the
%% child in order with them: after the submissions, before its next calls.
-spec async_cancel(ctx(), [reference()]) -> ok.
async_cancel({py_isolated, _, {_, Tab}}, Refs) ->
    fast_frame(Tab, ?ASYNC_CANCEL, term_to_binary(Refs)).

%% @doc Let the stream request Ref send N more items.
-spec stream_credit(ctx(), reference(), pos_integer()) -> ok.
stream_credit({py_isolated, Pid, _}, Ref, N) ->
    Pid ! {credit, self(), Ref, N},
    ok.

%% @doc The load py_router weighs: requests in flight, and the age in
%% microseconds of the oldest (approximately: since the context last
%% answered one, or became busy).
-spec load(ctx()) -> {non_neg_integer(), non_neg_integer()}.
load({py_isolated, _, {Load, _}}) ->
    case atomics:get(Load, 2) of
        0 -> {max(0, atomics:get(Load, 1)), 0};
        Sent -> {max(0, atomics:get(Load, 1)),
                 max(0, erlang:monotonic_time(microsecond) - Sent)}
    end.

%% @doc Whether a term is an isolated context's object reference.
-spec is_ref(term()) -> boolean().
is_ref({?REF_TAG, Pid, Gen, Id}) -> is_pid(Pid) andalso is_integer(Gen) andalso is_integer(Id);
is_ref(_) -> false.

%% @doc The context an object reference belongs to.
-spec ref_context(tuple()) -> {ok, ctx()} | {error, closed}.
ref_context({?REF_TAG, Pid, _, _}) ->
    case py_router:lookup(Pid) of
        {ok, Ctx} -> {ok, Ctx};
        error -> {error, closed}
    end.

%% @doc Tell every isolated context's child the names of the registered
%% functions (`hasattr(erlang, Name)' answers from them).
-spec publish([binary()]) -> ok.
publish(Names) ->
    Body = term_to_binary(Names),
    _ = [begin
             %% Written here, on the socket the callers write to, so that a
             %% call made after register_function returns finds the name;
             %% the server sends it again (a child starting now).
             ok = fast_frame(Tab, ?PUBLISH, Body),
             Pid ! {publish, Names}
         end || {Pid, {py_isolated, _, {_, Tab}}} <- py_router:handles()],
    ok.

%% A frame written by the calling process on the socket callers write
%% their requests to: after what it sent there, before what it sends next.
fast_frame(Tab, Kind, Body) ->
    try ets:lookup(Tab, gen) of
        [{cur, gen, _, Fast, _, _}] -> frame(#{fast => Fast}, Kind, 0, 0, Body);
        [] -> ok
    catch error:badarg -> ok
    end.

%% @doc Run the registered function a child's `erlang.call' names (in a
%% process of its own), send the answer to the context's child and return
%% it: the NIF resources it names (a buffer, a channel the function made)
%% are not held by their external form, so the caller of run_callback
%% keeps the answer until the request ends, as a request keeps its payload.
-spec run_callback(pid(), {non_neg_integer(), non_neg_integer()}, binary()) -> term().
run_callback(Pid, Id, Body) ->
    Result = callback_result(Pid, Id, Body),
    Pid ! {cb_reply, Id, term_to_binary(Result)},
    Result.

%% @doc Whether a term holds a reference anywhere (a NIF resource's may be
%% among them): only such a callback answer needs keeping until the end of
%% its request.
-spec names_ref(term()) -> boolean().
names_ref(T) when is_reference(T) -> true;
names_ref([H | T]) -> names_ref(H) orelse names_ref(T);
names_ref(T) when is_tuple(T) -> names_ref(tuple_to_list(T));
names_ref(T) when is_map(T) -> names_ref(maps:to_list(T));
names_ref(_) -> false.

callback_result(Pid, {Gen, _}, Body) ->
    ok = py_bridge:serving(Pid, Gen),
    case py_isolated_launch:decode(Body) of
        {Name, Args} when is_list(Args) -> py_callback:run(Name, Args);
        Other -> {error, {erlang, error, {bad_callback, Other}, [], <<"bad callback">>}}
    end.

%% API: control.

%% @private
-spec start_link(map()) -> {ok, pid()} | {error, term()}.
start_link(Opts) ->
    gen_server:start_link(?MODULE, Opts, []).

%% @doc Interrupt the request running on the child (`KeyboardInterrupt'-like
%% `erlang.CallInterrupted', inside blocking C calls too); its caller gets
%% `{error, interrupted}'. `not_running' when none runs.
-spec interrupt(pid()) -> ok | not_running.
interrupt(Pid) ->
    gen_server:call(Pid, interrupt).

%% @doc Kill the child (SIGKILL): calls in flight get `{error, killed}', and
%% the next child starts (a restart, counted in the budget).
-spec kill(pid()) -> ok.
kill(Pid) ->
    gen_server:call(Pid, kill).

%% @doc What runs the context: `os_pid', `python_version', `executable',
%% `platform', `generation' (children started so far) and `restarts'.
-spec child_info(pid()) -> {ok, map()}.
child_info(Pid) ->
    gen_server:call(Pid, child_info).

%% gen_server.

%% @private
-spec init(map()) -> {ok, map()} | {stop, term()}.
init(Opts0) ->
    process_flag(trap_exit, true),
    Slot = case Opts0 of
               #{default := D} -> D;
               #{pool := {Name, I}} -> {pool, Name, I};
               _ -> false
           end,
    case py_isolated_opts:validate(Opts0) of
        {ok, Opts} ->
            Load = atomics:new(3, [{signed, true}]),
            Tab = ets:new(py_isolated, [set, public, {keypos, #ireq.id},
                                        {write_concurrency, true}]),
            true = ets:insert(Tab, {cur, gen, 0, undefined, undefined, 0}),
            Ctx = {py_isolated, self(), {Load, Tab}},
            St0 = #{opts => Opts, ctx => Ctx, load => Load, tab => Tab, gen => 0,
                    lead => undefined, stopped => #{}, watched => #{},
                    pids => #{}, pid_next => 1, stuck => none,
                    restarts => [], killed => false, port => undefined, sock => undefined,
                    fast => undefined, os_pid => undefined, info => #{}, output => <<>>},
            case start_child(St0#{zmon => case Opts of
                                               #{zygote := Z} when is_pid(Z) ->
                                                   erlang:monitor(process, Z);
                                               _ -> undefined
                                           end}) of
                {ok, St} ->
                    ok = py_router:register(self(), Ctx, Slot),
                    {ok, St};
                {error, Reason} ->
                    {stop, Reason}
            end;
        {error, Reason} ->
            {stop, Reason}
    end.

%% @private
-spec handle_call(term(), gen_server:from(), map()) -> {reply, term(), map()}.
handle_call({numbers, Owner, Caller}, _From, St0 = #{gen := Gen, fast := Fast}) ->
    case Fast of
        undefined ->
            {reply, {error, no_child}, St0};
        _ ->
            {ON, St1} = pid_number(Owner, St0),
            {CN, St} = pid_number(Caller, St1),
            {reply, {ok, Gen, ON, CN}, St}
    end;
handle_call(resource, _From, St = #{ctx := Ctx}) ->
    {reply, {ok, Ctx}, St};
handle_call({cancel, Pid, Ref}, _From, St = #{tab := Tab, load := Load}) ->
    Match = #ireq{from = Pid, ref = Ref, _ = '_'},
    case [R || R0 <- ets:match_object(Tab, Match),
               R <- py_isolated_caller:take(Tab, Load, R0#ireq.id)] of
        [R] -> {reply, cancelled, stop_request(R#ireq.id, R#ireq.gen, St)};
        [] -> {reply, not_found, St}
    end;
handle_call(interrupt, _From, St = #{load := Load}) ->
    case atomics:get(Load, 1) > 0 of
        false -> {reply, not_running, St};
        true -> ok = frame(St, ?INTERRUPT, 0, 0, <<>>),
                _ = signal(St, ?SIGINT),
                {reply, ok, St}
    end;
handle_call(kill, _From, St = #{load := Load, stuck := Stuck}) ->
    _ = signal(St, ?SIGKILL),
    %% Requests made after this returns run on the next child (child_exited
    %% replays those after the last one sent to this one).
    {reply, ok, St#{killed := true, stuck := case Stuck of
                                                  none -> atomics:get(Load, 3);
                                                  _ -> Stuck
                                              end}};
handle_call(child_info, _From, St = #{info := Info, gen := Gen, restarts := R}) ->
    {reply, {ok, Info#{generation => Gen, restarts => length(R)}}, St};
handle_call(_Request, _From, St) ->
    {reply, {error, unknown_call}, St}.

%% @private
-spec handle_cast(term(), map()) -> {noreply, map()}.
handle_cast(_Msg, St) ->
    {noreply, St}.

%% @private
-spec handle_info(term(), map()) -> {noreply, map()} | {stop, term(), map()}.
handle_info({tcp, Sock, <<Kind, A:64, B:64, Body/binary>>}, St = #{sock := Sock}) ->
    {noreply, from_child(Kind, A, B, Body, St)};
handle_info({req, Id}, St) ->
    {noreply, submit(Id, St)};
handle_info({abandon, Id, Gen}, St) ->
    {noreply, stop_request(Id, Gen, St)};
handle_info({done, Id}, St) ->
    {noreply, stopped(Id, St)};
handle_info({cb_reply, {Gen, Id}, Bin}, St = #{gen := Gen}) ->
    ok = frame(St, ?CB_REPLY, Id, 0, Bin),
    {noreply, St};
handle_info({cb_reply, CbId = {Gen, _}, Bin, {ReqId, Result}}, St = #{gen := Gen, tab := Tab}) ->
    %% A callback of a cast or an async request: the request keeps the
    %% answer (its NIF resources) until it ends. Callers never update an
    %% entry (they insert and take it), so this read and write is safe.
    _ = case ets:lookup(Tab, ReqId) of
            [#ireq{keep = Keep}] -> ets:update_element(Tab, ReqId, {#ireq.keep, {Result, Keep}});
            _ -> false  % a thread's callback after its request: nothing to keep it in
        end,
    handle_info({cb_reply, CbId, Bin}, St);
handle_info({credit, Pid, Ref, N}, St = #{tab := Tab}) ->
    _ = [frame(St, ?CREDIT, Id, 0, term_to_binary(N))
         || #ireq{id = Id} <- ets:match_object(Tab, #ireq{from = Pid, ref = Ref, _ = '_'})],
    {noreply, St};
handle_info({publish, Names}, St) ->
    ok = frame(St, ?PUBLISH, 0, 0, term_to_binary(Names)),
    {noreply, St};
handle_info({timeout, _, {kill_after, Id}}, St = #{stopped := Stopped}) ->
    case is_map_key(Id, Stopped) of
        true -> _ = signal(St, ?SIGKILL), {noreply, St#{stuck := Id}};
        false -> {noreply, St}
    end;
handle_info({'DOWN', _, process, Pid, _}, St = #{watched := W}) when is_map_key(Pid, W) ->
    {noreply, caller_down(Pid, St#{watched := maps:remove(Pid, W)})};
handle_info({Port, {data, Data}}, St = #{port := Port}) ->
    {noreply, output(Data, St)};
handle_info({Port, {exit_status, Status}}, St = #{port := Port}) ->
    child_exited(py_isolated_opts:exit_reason(Status), St);
handle_info({py_zygote_exit, _, OsPid, Reason}, St = #{os_pid := OsPid}) ->
    child_exited(Reason, St);
handle_info({'DOWN', ZMon, process, _, Why}, St = #{zmon := ZMon}) ->
    _ = [deliver(R, {error, {child_exited, {zygote_down, Why}}}) || R <- take_all(St)],
    {stop, {zygote_down, Why}, St};
handle_info(fast_garbled, St) ->
    _ = signal(St, ?SIGKILL),  %% cannot happen; if it does, a new child
    {noreply, St};
handle_info({tcp_closed, Sock}, St = #{sock := Sock}) ->
    {noreply, St#{sock := undefined}};  %% the exit status follows
handle_info({tcp_error, Sock, _}, St = #{sock := Sock}) ->
    _ = signal(St, ?SIGKILL),
    {noreply, St};
handle_info(_Msg, St) ->
    {noreply, St}.

%% @private
-spec terminate(term(), map()) -> ok.
terminate(_Reason, St) ->
    ok = py_router:unregister(self()),
    _ = [deliver(R, {error, closed}) || R <- take_all(St)],
    stop_child(St).

%% Internal: requests.

%% A request a caller could not send itself (it had no number in the
%% child, or there was no child): it waits in the table.
submit(Id, St = #{tab := Tab, fast := Fast}) when Fast =/= undefined ->
    case ets:lookup(Tab, Id) of
        [R] -> send_request(R, St);
        [] -> St  %% its caller gave up
    end;
submit(_Id, St) ->
    St.

%% Send a request to the child, its reply to come on the control socket
%% (its caller waits for a message).
send_request(R = #ireq{id = Id, owner = Owner, from = From, bin = Bin}, St0 = #{gen := Gen,
                                                                               tab := Tab}) ->
    {ON, St1} = pid_number(Owner, St0),
    {CN, St} = pid_number(From, St1),
    true = ets:insert(Tab, R#ireq{n = 0, gen = Gen}),
    ok = frame(St, ?REQ, Id, (ON bsl 32) bor CN, Bin),
    St.

%% The child knows each process that sends requests (or owns a namespace)
%% by a number, told once in a PID frame; its death is told by number too.
%% A process with a number is watched.
pid_number(Pid, St = #{pids := Pids}) when is_map_key(Pid, Pids) ->
    {maps:get(Pid, Pids), St};
pid_number(Pid, St = #{pids := Pids, pid_next := N, watched := W}) ->
    ok = frame(St, ?PID, N, 0, term_to_binary(Pid)),
    {N, St#{pids := Pids#{Pid => N}, pid_next := N + 1,
            watched := W#{Pid => erlang:monitor(process, Pid)}}}.

%% Its caller gave up a request (taken from the table): the child drops it
%% if it is still queued (DROPPED), gets erlang.CallInterrupted in it if it
%% runs, or says it is DONE; SIGKILL follows kill_after ms later unless it
%% let the request go.
stop_request(Id, Gen, St = #{gen := Gen, stopped := Stopped, opts := #{kill_after := KillAfter}})
  when Gen > 0 ->
    ok = frame(St, ?STOP, Id, 0, <<>>),
    _ = signal(St, ?SIGINT),
    Kill = case KillAfter of
               infinity -> undefined;
               _ -> erlang:start_timer(KillAfter, self(), {kill_after, Id})
           end,
    St#{stopped := Stopped#{Id => Kill}};
stop_request(_Id, _Gen, St) ->
    St.  %% never sent, or sent to an earlier child

%% A stopped request is over in the child.
stopped(Id, St = #{stopped := Stopped}) ->
    case maps:take(Id, Stopped) of
        {Timer, Rest} -> cancel_timer(Timer), St#{stopped := Rest};
        error -> St
    end.

from_child(?REPLY, Id, _, Body, St = #{tab := Tab, load := Load}) ->
    _ = [deliver(R, {bin, Body}) || R <- py_isolated_caller:take(Tab, Load, Id)],
    stopped(Id, St);
from_child(?DROPPED, Id, _, _, St = #{tab := Tab, load := Load}) ->
    _ = [deliver(R, {error, cancelled}) || R <- py_isolated_caller:take(Tab, Load, Id)],
    stopped(Id, St);
from_child(?DONE, Id, _, _, St) ->
    stopped(Id, St);
from_child(?CALLBACK, CbId, ReqId, Body, St = #{tab := Tab, gen := Gen}) ->
    case ets:lookup(Tab, ReqId) of
        [#ireq{tag = sync, from = From, ref = Ref}] ->
            From ! {py_icallback, Ref, {Gen, CbId}, Body};
        _ ->
            %% From a Python thread, a cast or an async request: a process
            %% of its own, as py_callback does for the VM's contexts.
            Self = self(),
            _ = proc_lib:spawn(fun() ->
                                       ok = py_semaphore:exempt(),
                                       Id = {Gen, CbId},
                                       Result = callback_result(Self, Id, Body),
                                       Bin = term_to_binary(Result),
                                       Self ! case names_ref(Result) of
                                                  true -> {cb_reply, Id, Bin, {ReqId, Result}};
                                                  false -> {cb_reply, Id, Bin}
                                              end
                               end)
    end,
    St;
from_child(?SEND, _, _, Body, St) ->
    case py_isolated_launch:decode(Body) of
        {Dest, Msg} -> _ = catch erlang:send(Dest, Msg, [noconnect]);
        _ -> ok
    end,
    St;
from_child(?STREAM, Id, _, Body, St = #{tab := Tab}) ->
    case ets:lookup(Tab, Id) of
        [#ireq{from = From, ref = Ref, tag = Tag}] ->
            From ! {Tag, Ref, {data, py_isolated_launch:decode(Body)}};
        _ ->
            ok
    end,
    St;
from_child(_Kind, _, _, _, St) ->
    St.

deliver(#ireq{tag = sync, from = From, ref = Ref}, Reply) ->
    From ! {Ref, Reply};
deliver(#ireq{tag = none}, _Reply) ->
    ok;
deliver(#ireq{tag = Tag, from = From, ref = Ref}, Reply) ->
    From ! {Tag, Ref, py_isolated_caller:result(Reply)}.

%% Every request in the table (sent or not), taken.
take_all(#{tab := Tab, load := Load}) ->
    Ids = ets:select(Tab, [{#ireq{id = '$1', _ = '_'}, [], ['$1']}]),
    lists:append([py_isolated_caller:take(Tab, Load, Id) || Id <- lists:sort(Ids)]).

%% A watched process died: its namespace and objects in the child go, and
%% its requests stop (casts excepted: they outlive their sender). If it
%% was reading the fast socket, the replies it may have taken with it are
%% sent again, and another waiting caller reads.
caller_down(Pid, St0 = #{pids := Pids, tab := Tab, load := Load}) ->
    Mine = [R || R0 = #ireq{tag = T} <- ets:match_object(Tab, #ireq{from = Pid, _ = '_'}),
                 T =/= none, R <- py_isolated_caller:take(Tab, Load, R0#ireq.id)],
    St = lists:foldl(fun(#ireq{id = Id, gen = Gen}, S) -> stop_request(Id, Gen, S) end,
                     St0, Mine),
    {N, Rest} = maps:take(Pid, Pids),
    ok = frame(St, ?DOWN, N, 0, <<>>),
    ok = reader_down(N, St),
    St#{pids := Rest}.

reader_down(N, St = #{lead := Lead, tab := Tab, gen := Gen}) when Lead =/= undefined ->
    case atomics:compare_exchange(Lead, 1, N, 0) of
        ok ->
            Waiting = ets:select(Tab, [{#ireq{id = '$1', tag = sync, gen = Gen, _ = '_'},
                                        [{'>', {element, #ireq.n, '$_'}, 0}], ['$1']}]),
            ok = frame(St, ?RESEND, 0, 0, term_to_binary(Waiting)),
            py_isolated_caller:hand_off(Tab, Lead, 0, Gen);
        _ ->
            ok
    end;
reader_down(_N, _St) ->
    ok.

cancel_timer(undefined) -> ok;
cancel_timer(T) -> _ = erlang:cancel_timer(T, [{async, true}, {info, false}]), ok.

%% A frame to the child, on the fast socket (where the callers' requests go).
frame(#{fast := undefined}, _Kind, _A, _B, _Body) ->
    ok;  %% the child is gone; its exit status answers what is in flight
frame(#{fast := Fast}, Kind, A, B, Body) ->
    _ = socket:send(Fast, [<<(?HEAD + iolist_size(Body)):32, Kind, A:64, B:64>> | Body]),
    ok.

signal(#{os_pid := OsPid}, Sig) when is_integer(OsPid) ->
    py_nif:os_signal(OsPid, Sig);
signal(_, _) ->
    ok.

%% Internal: the child's life.

child_exited(Reason0, St0 = #{killed := Killed, opts := Opts, stuck := Stuck, tab := Tab,
                              gen := Gen}) ->
    Reason = case Killed of true -> killed; false -> Reason0 end,
    Reply = case Reason of
                killed -> {error, killed};
                _ -> {error, {child_exited, Reason}}
            end,
    %% No caller sends to this child any more.
    true = ets:insert(Tab, {cur, gen, Gen, undefined, undefined, 0}),
    %% Killed for a request that outlived its deadline by kill_after: the
    %% ones sent after it never started (the child was stuck in it), so the
    %% next child runs them. Requests not sent yet wait for the next child.
    Sent = ets:select(Tab, [{#ireq{gen = '$1', _ = '_'}, [{'>', '$1', 0}], ['$_']}]),
    {Replay, Failed} = lists:partition(fun(#ireq{id = Id}) ->
                                               is_integer(Stuck) andalso Id > Stuck
                                       end, lists:keysort(#ireq.id, Sent)),
    Load = maps:get(load, St0),
    _ = [deliver(R, Reply) || #ireq{id = Id} <- Failed,
                              R <- py_isolated_caller:take(Tab, Load, Id)],
    _ = [cancel_timer(T) || T <- maps:values(maps:get(stopped, St0))],
    ?LOG_NOTICE("isolated context ~p: child ~p exited (~p)",
                [self(), maps:get(os_pid, St0), Reason0],
                #{domain => [erlang_python, isolated]}),
    _ = [erlang:demonitor(M, [flush]) || M <- maps:values(maps:get(watched, St0))],
    St = close_sock(flush_output(St0#{killed := false, pids := #{}, watched := #{},
                                      stuck := none, stopped := #{}})),
    Now = erlang:monotonic_time(millisecond),
    #{restart := Restart, max_restarts := Max, restart_period := Period} = Opts,
    Recent = [T || T <- maps:get(restarts, St), Now - T < Period],
    case Restart andalso length(Recent) < Max of
        true ->
            case start_child(St#{restarts := [Now | Recent], port := undefined,
                                 os_pid := undefined}) of
                {ok, St1} ->
                    Waiting = ets:select(Tab, [{#ireq{gen = 0, _ = '_'}, [], ['$_']}]),
                    {noreply, lists:foldl(fun send_request/2, St1,
                                          lists:keysort(#ireq.id, Replay ++ Waiting))};
                {error, Why} ->
                    {stop, Why, St}
            end;
        false ->
            {stop, {child_exited, Reason0}, St}
    end.

close_sock(St = #{sock := Sock, fast := Fast}) ->
    _ = Sock =:= undefined orelse gen_tcp:close(Sock),
    _ = Fast =:= undefined orelse socket:close(Fast),
    St#{sock := undefined, fast := undefined, lead := undefined}.

stop_child(St = #{port := Port}) ->
    _ = close_sock(St),
    _ = signal(St, ?SIGKILL),
    case Port of
        undefined -> ok;
        _ -> catch port_close(Port), ok
    end.

%% Start a child (a new process, or a fork of the context's zygote) and
%% wait until it is ready (start_timeout); then callers send to it.
start_child(St = #{opts := Opts, gen := Gen0, tab := Tab}) ->
    Gen = Gen0 + 1,
    How = case Opts of
              #{zygote := Z} when is_pid(Z) -> {zygote, Z};
              _ -> {port, "erlang._child"}
          end,
    case py_isolated_launch:launch(How, Opts, config(Opts, Gen), maps:get(start_timeout, Opts)) of
        {ok, #{port := Port, os_pid := OsPid, sock := Sock, fast := Fast, info := Info,
               output := Out}} ->
            ok = inet:setopts(Sock, [{active, true}]),
            Lead = atomics:new(1, [{signed, false}]),
            true = ets:insert(Tab, {cur, gen, Gen, Fast, Lead, maps:get(reply_spin_us, Opts)}),
            {ok, flush_output(St#{port := Port, os_pid := OsPid, sock := Sock, fast := Fast,
                                  lead := Lead, info := Info, gen := Gen, output := Out})};
        {error, _} = Error ->
            Error
    end.

config(Opts, Gen) ->
    #{rlimits := Rlimits, cgroup := Cgroup, paths := Paths, preload := Preload,
      sandbox := Sandbox} = Opts,
    #{server => self(), generation => Gen, max_depth => maps:get(max_depth, py_opts:runtime()),
      rlimits => Rlimits, cgroup => Cgroup, paths => Paths,
      preload => case Preload of undefined -> none; _ -> Preload end,
      sandbox => Sandbox, functions => py_callback:names(),
      %% the application's registry, applied as every context applies it
      setup => py_setup:settings()}.

%% The child's stdout and stderr, a line at a time, to logger.
output(Data, St = #{output := Out}) ->
    log_lines(St#{output := <<Out/binary, Data/binary>>}).

log_lines(St = #{output := Out}) ->
    case binary:split(Out, <<"\n">>) of
        [Line, Rest] ->
            log_line(Line, St),
            log_lines(St#{output := Rest});
        [_] when byte_size(Out) > 65536 ->
            log_line(Out, St),
            St#{output := <<>>};
        [_] ->
            St
    end.

flush_output(St = #{output := <<>>}) -> St;
flush_output(St = #{output := Out}) ->
    St1 = log_lines(St#{output := <<Out/binary, "\n">>}),
    St1#{output := <<>>}.

log_line(Line, #{os_pid := OsPid}) ->
    ?LOG_NOTICE("[python ~p] ~ts", [OsPid, Line],
                #{domain => [erlang_python, isolated], context => self(), os_pid => OsPid,
                  python_output => Line}).
