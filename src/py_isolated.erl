%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc An isolated context: the same API as a worker context, with its
%% interpreter in a child OS process (`py_context:new(#{mode => isolated})').
%%
%% This gen_server owns the child: it starts it with open_port (no shell;
%% `python -u -m erlang._child Socket', priv/python/erlang/_child.py), logs
%% its stdout and stderr, talks to it over a Unix socket in frames
%% `<<Kind:8, A:64, B:64, Body/binary>>' ({packet, 4}; Body in external term
%% format), restarts it when it dies, and enforces every deadline: a
%% request still queued is dropped, a running one gets a STOP frame and
%% SIGINT (`erlang.CallInterrupted' in Python, inside blocking C calls too),
%% and a child that has not answered `kill_after' ms later gets SIGKILL and
%% is restarted.
%%
%% The caller side (request/3, cast/2, async/3...) runs in the caller: it
%% encodes the payload itself, so the server only frames bytes, and it
%% decodes its own reply. Requests are pipelined: the server sends each as
%% it comes and the child queues them; the child answers in the order it
%% runs them, a callback that calls Python again being a nested request.
%%
%% A child's death (a segfault, abort, `os._exit', an OOM kill, a resource
%% limit) answers every request in flight with `{error, {child_exited,
%% Reason}}' (`{signal, 11}' for a segfault) at once; the next child starts
%% (Python state gone) unless `restart' is false or `max_restarts' restarts
%% happened within `restart_period' ms, when the context stops with
%% `{child_exited, Reason}'.
-module(py_isolated).
-behaviour(gen_server).

-export([request/3, cast/2, async/3, cancel/2, stream_credit/3, load/1,
         is_ref/1, ref_context/1, publish/1]).
-export([start_link/1, interrupt/1, kill/1, child_info/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).
-export_type([ctx/0]).

-include_lib("kernel/include/logger.hrl").

%% An isolated context as py_router keeps it: the server, and its load.
-opaque ctx() :: {py_isolated, pid(), atomics:atomics_ref()}.

%% Frames to the child.
-define(REQ, 1).
-define(CB_REPLY, 2).
-define(STOP, 3).
-define(INTERRUPT, 4).
-define(DOWN, 5).
-define(CREDIT, 6).
-define(PUBLISH, 7).
-define(PID, 9).
%% Frames from the child.
-define(REPLY, 1).
-define(CALLBACK, 2).
-define(SEND, 3).
-define(STREAM, 4).
-define(DROPPED, 7).

-define(OWNER, '$py_isolated_owner').
-define(SIGINT, 2).
-define(SIGKILL, 9).
-define(REF_TAG, '$erlang_python_ref').

-record(req, {from :: pid(), ref :: reference(), tag :: atom(), owner :: pid(),
              bin :: binary(), deadline :: integer() | infinity,
              sent :: integer(), timer :: reference() | undefined,
              live = true :: boolean()}).

%% API: the caller's side.

%% @doc Run a request and wait for its result (in the caller's process).
%% The server answers at the deadline, so no timer runs here.
-spec request(ctx(), py_context:payload(), timeout()) -> term().
request({py_isolated, Pid, _}, Payload, Timeout) ->
    Mon = erlang:monitor(process, Pid),
    Pid ! {req, self(), Mon, sync, owner(), term_to_binary(Payload), Timeout},
    receive
        {Mon, Reply} ->
            erlang:demonitor(Mon, [flush]),
            result(Reply);
        {py_icallback, Mon, Id, Body} ->
            ok = callback(Pid, Id, Body),
            wait(Pid, Mon);
        {'DOWN', Mon, process, _, _} ->
            {error, closed}
    end.

wait(Pid, Mon) ->
    receive
        {Mon, Reply} ->
            erlang:demonitor(Mon, [flush]),
            result(Reply);
        {py_icallback, Mon, Id, Body} ->
            ok = callback(Pid, Id, Body),
            wait(Pid, Mon);
        {'DOWN', Mon, process, _, _} ->
            {error, closed}
    end.

%% @doc Run a request and forget its result.
-spec cast(ctx(), py_context:payload()) -> ok | {error, closed}.
cast({py_isolated, Pid, _}, Payload) ->
    case erlang:is_process_alive(Pid) of
        true ->
            Pid ! {req, self(), make_ref(), none, owner(), term_to_binary(Payload), infinity},
            ok;
        false ->
            {error, closed}
    end.

%% @doc Run a request; its result comes as `{Tag, Ref, Result}' (stream
%% items as `{py_stream, Ref, {data, Item}}' first).
-spec async(ctx(), atom(), py_context:payload()) -> {ok, reference()} | {error, closed}.
async({py_isolated, Pid, _}, Tag, Payload) ->
    case erlang:is_process_alive(Pid) of
        true ->
            Ref = make_ref(),
            Pid ! {req, self(), Ref, Tag, owner(), term_to_binary(Payload), infinity},
            {ok, Ref};
        false ->
            {error, closed}
    end.

%% @doc Cancel a request made with async/3: `cancelled' (no reply will come)
%% or `not_found'.
-spec cancel(ctx(), reference()) -> cancelled | not_found.
cancel({py_isolated, Pid, _}, Ref) ->
    try gen_server:call(Pid, {cancel, self(), Ref})
    catch exit:_ -> not_found
    end.

%% @doc Let the stream request Ref send N more items.
-spec stream_credit(ctx(), reference(), pos_integer()) -> ok.
stream_credit({py_isolated, Pid, _}, Ref, N) ->
    Pid ! {credit, self(), Ref, N},
    ok.

%% @doc The load py_router weighs: requests in flight, and the age in
%% microseconds of the oldest.
-spec load(ctx()) -> {non_neg_integer(), non_neg_integer()}.
load({py_isolated, _, Load}) ->
    case atomics:get(Load, 2) of
        0 -> {atomics:get(Load, 1), 0};
        Sent -> {atomics:get(Load, 1), max(0, erlang:monotonic_time(microsecond) - Sent)}
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
    _ = [Pid ! {publish, Names} || {Pid, {py_isolated, _, _}} <- py_router:handles()],
    ok.

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
            Load = atomics:new(2, [{signed, true}]),
            Ctx = {py_isolated, self(), Load},
            St0 = #{opts => Opts, ctx => Ctx, load => Load, gen => 0, next => 1,
                    reqs => #{}, order => queue:new(), refs => #{}, watched => #{},
                    pids => #{}, pid_next => 1, stuck => none,
                    restarts => [], killed => false, port => undefined, sock => undefined,
                    os_pid => undefined, info => #{}, output => <<>>},
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
handle_call(resource, _From, St = #{ctx := Ctx}) ->
    {reply, {ok, Ctx}, St};
handle_call({cancel, Pid, Ref}, _From, St = #{refs := Refs, reqs := Reqs}) ->
    case Refs of
        #{{Pid, Ref} := Id} when is_map_key(Id, Reqs) ->
            {reply, cancelled, abandon(Id, St)};
        _ ->
            {reply, not_found, St}
    end;
handle_call(interrupt, _From, St = #{reqs := Reqs}) ->
    case maps:size(Reqs) of
        0 -> {reply, not_running, St};
        _ -> ok = frame(St, ?INTERRUPT, 0, 0, <<>>),
             _ = signal(St, ?SIGINT),
             {reply, ok, St}
    end;
handle_call(kill, _From, St = #{next := Next, stuck := Stuck}) ->
    _ = signal(St, ?SIGKILL),
    %% Requests made after this returns run on the next child (child_exited
    %% replays those after the last one sent to this one).
    {reply, ok, St#{killed := true, stuck := case Stuck of none -> Next - 1; _ -> Stuck end}};
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
handle_info({req, From, Ref, Tag, Owner, Bin, Timeout}, St) ->
    {noreply, submit(From, Ref, Tag, Owner, Bin, Timeout, St)};
handle_info({cb_reply, Id, Bin}, St) ->
    ok = frame(St, ?CB_REPLY, Id, 0, Bin),
    {noreply, St};
handle_info({credit, Pid, Ref, N}, St = #{refs := Refs}) ->
    case Refs of
        #{{Pid, Ref} := Id} -> ok = frame(St, ?CREDIT, Id, 0, term_to_binary(N));
        _ -> ok
    end,
    {noreply, St};
handle_info({publish, Names}, St) ->
    ok = frame(St, ?PUBLISH, 0, 0, term_to_binary(Names)),
    {noreply, St};
handle_info({timeout, _, {deadline, Id}}, St = #{reqs := Reqs}) ->
    case Reqs of
        #{Id := R = #req{live = true}} ->
            deliver(R, {error, timeout}),
            {noreply, abandon(Id, St)};
        _ ->
            {noreply, St}
    end;
handle_info({timeout, _, {kill_after, Id}}, St = #{reqs := Reqs}) ->
    case is_map_key(Id, Reqs) of
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
handle_info({'DOWN', ZMon, process, _, Why}, St = #{zmon := ZMon, reqs := Reqs}) ->
    _ = [deliver(R, {error, {child_exited, {zygote_down, Why}}})
         || R = #req{live = true} <- maps:values(Reqs)],
    {stop, {zygote_down, Why}, St#{reqs := #{}}};
handle_info({tcp_closed, Sock}, St = #{sock := Sock}) ->
    {noreply, St#{sock := undefined}};  %% the exit status follows
handle_info({tcp_error, Sock, _}, St = #{sock := Sock}) ->
    _ = signal(St, ?SIGKILL),
    {noreply, St};
handle_info({inet_reply, _, ok}, St) ->
    {noreply, St};
handle_info({inet_reply, Sock, {error, _}}, St = #{sock := Sock}) ->
    _ = signal(St, ?SIGKILL),
    {noreply, St};
handle_info(_Msg, St) ->
    {noreply, St}.

%% @private
-spec terminate(term(), map()) -> ok.
terminate(_Reason, St = #{reqs := Reqs}) ->
    ok = py_router:unregister(self()),
    _ = [deliver(R, {error, closed}) || R = #req{live = true} <- maps:values(Reqs)],
    stop_child(St).

%% Internal: requests.

owner() ->
    case get(?OWNER) of
        undefined -> self();
        Owner -> Owner
    end.

result({bin, Bin}) -> decode(Bin);
result(Term) -> Term.

%% Terms from the child may hold atoms the VM has not seen (an exception's
%% name, an erlang.Atom): made within the cap on atoms made from Python.
decode(Bin) ->
    py_isolated_launch:decode(Bin).

%% A callback (erlang.call in the request) runs in a helper linked to the
%% caller, so that the caller keeps waiting for the server's answer (which
%% comes at the deadline whatever the function does). Its own requests run
%% in the caller's namespace, on the caller's context.
callback(Pid, Id, Body) ->
    Owner = owner(),
    Route = py_router:cached(),
    _ = proc_lib:spawn_link(fun() ->
                                    put(?OWNER, Owner),
                                    ok = py_router:adopt(Route),
                                    ok = py_semaphore:exempt(),
                                    run_callback(Pid, Id, Body)
                            end),
    ok.

run_callback(Pid, Id, Body) ->
    Result = case decode(Body) of
                 {Name, Args} when is_list(Args) -> py_callback:run(Name, Args);
                 Other -> {error, {erlang, error, {bad_callback, Other}, [], <<"bad callback">>}}
             end,
    Pid ! {cb_reply, Id, term_to_binary(Result)},
    ok.

%% Internal: the server.

submit(From, Ref, Tag, Owner, Bin, Timeout, St0) ->
    {OwnerN, StO} = pid_number(Owner, St0),
    {CallerN, St} = pid_number(From, StO),
    #{next := Id, reqs := Reqs, order := Order, refs := Refs} = St,
    ok = frame(St, ?REQ, Id, (OwnerN bsl 32) bor CallerN, Bin),
    Timer = case Timeout of
                infinity -> undefined;
                _ -> erlang:start_timer(Timeout, self(), {deadline, Id})
            end,
    Now = erlang:monotonic_time(microsecond),
    R = #req{from = From, ref = Ref, tag = Tag, owner = Owner, bin = Bin,
             deadline = case Timeout of infinity -> infinity; _ -> Now div 1000 + Timeout end,
             sent = Now, timer = Timer},
    St1 = St#{next := Id + 1, reqs := Reqs#{Id => R}, order := queue:in(Id, Order),
              refs := case Tag of sync -> Refs; _ -> Refs#{{From, Ref} => Id} end},
    load_changed(St1).

resubmit({_, #req{from = From, ref = Ref, tag = Tag, owner = Owner, bin = Bin,
                  deadline = Deadline}}, St) ->
    Timeout = case Deadline of
                  infinity -> infinity;
                  _ -> max(0, Deadline - erlang:monotonic_time(millisecond))
              end,
    submit(From, Ref, Tag, Owner, Bin, Timeout, St).

%% The child knows each process that sends requests (or owns a namespace)
%% by a number, told once in a PID frame; its death is told by number too.
%% A process with a number is watched.
pid_number(Pid, St = #{pids := Pids}) when is_map_key(Pid, Pids) ->
    {maps:get(Pid, Pids), St};
pid_number(Pid, St = #{pids := Pids, pid_next := N, watched := W}) ->
    ok = frame(St, ?PID, N, 0, term_to_binary(Pid)),
    {N, St#{pids := Pids#{Pid => N}, pid_next := N + 1,
            watched := W#{Pid => erlang:monitor(process, Pid)}}}.

%% The caller gets no reply any more; the child drops the request if it is
%% still queued (DROPPED) or gets erlang.CallInterrupted in it if it runs.
%% SIGKILL follows kill_after ms later unless the child has let it go.
abandon(Id, St = #{reqs := Reqs, opts := #{kill_after := KillAfter}}) ->
    #{Id := R} = Reqs,
    cancel_timer(R#req.timer),
    ok = frame(St, ?STOP, Id, 0, <<>>),
    _ = signal(St, ?SIGINT),
    Kill = case KillAfter of
               infinity -> undefined;
               _ -> erlang:start_timer(KillAfter, self(), {kill_after, Id})
           end,
    St#{reqs := Reqs#{Id := R#req{live = false, timer = Kill}}}.

from_child(?REPLY, Id, _, Body, St) ->
    finished(Id, {bin, Body}, St);
from_child(?DROPPED, Id, _, _, St) ->
    finished(Id, {error, cancelled}, St);
from_child(?CALLBACK, CbId, ReqId, Body, St = #{reqs := Reqs}) ->
    case Reqs of
        #{ReqId := #req{tag = sync, live = true, from = From, ref = Ref}} ->
            From ! {py_icallback, Ref, CbId, Body};
        _ ->
            %% From a Python thread, a cast or an async request: a process
            %% of its own, as py_callback does for the VM's contexts.
            Self = self(),
            _ = proc_lib:spawn(fun() -> ok = py_semaphore:exempt(),
                                        run_callback(Self, CbId, Body)
                               end)
    end,
    St;
from_child(?SEND, _, _, Body, St) ->
    case decode(Body) of
        {Dest, Msg} -> _ = catch erlang:send(Dest, Msg, [noconnect]);
        _ -> ok
    end,
    St;
from_child(?STREAM, Id, _, Body, St = #{reqs := Reqs}) ->
    case Reqs of
        #{Id := #req{live = true, from = From, ref = Ref, tag = Tag}} ->
            From ! {Tag, Ref, {data, decode(Body)}};
        _ ->
            ok
    end,
    St;
from_child(_Kind, _, _, _, St) ->
    St.

finished(Id, Reply, St = #{reqs := Reqs, refs := Refs}) ->
    case maps:take(Id, Reqs) of
        {R = #req{from = From, ref = Ref}, Rest} ->
            cancel_timer(R#req.timer),
            R#req.live andalso deliver(R, Reply),
            load_changed(St#{reqs := Rest, refs := maps:remove({From, Ref}, Refs)});
        error ->
            St
    end.

deliver(#req{tag = sync, from = From, ref = Ref}, Reply) ->
    From ! {Ref, Reply};
deliver(#req{tag = none}, _Reply) ->
    ok;
deliver(#req{tag = Tag, from = From, ref = Ref}, Reply) ->
    From ! {Tag, Ref, result(Reply)}.

%% The requests in flight, and when the oldest was sent (py_router:choose/1).
load_changed(St = #{load := Load, reqs := Reqs, order := Order0}) ->
    Order = drop_done(Order0, Reqs),
    atomics:put(Load, 1, maps:size(Reqs)),
    atomics:put(Load, 2, case queue:peek(Order) of
                             {value, Id} -> (maps:get(Id, Reqs))#req.sent;
                             empty -> 0
                         end),
    St#{order := Order}.

drop_done(Order, Reqs) ->
    case queue:peek(Order) of
        {value, Id} when not is_map_key(Id, Reqs) -> drop_done(queue:drop(Order), Reqs);
        _ -> Order
    end.

%% A watched process died: its namespace and objects in the child go, and
%% its requests stop (casts excepted: they outlive their sender).
caller_down(Pid, St0 = #{reqs := Reqs, pids := Pids}) ->
    Mine = [Id || {Id, #req{from = F, tag = T, live = true}} <- maps:to_list(Reqs),
                  F =:= Pid, T =/= none],
    St = lists:foldl(fun abandon/2, St0, Mine),
    {N, Rest} = maps:take(Pid, Pids),
    ok = frame(St, ?DOWN, N, 0, <<>>),
    St#{pids := Rest}.

cancel_timer(undefined) -> ok;
cancel_timer(T) -> _ = erlang:cancel_timer(T, [{async, true}, {info, false}]), ok.

frame(#{sock := undefined}, _Kind, _A, _B, _Body) ->
    ok;  %% the child is gone; its exit status answers what is in flight
frame(#{sock := Sock}, Kind, A, B, Body) ->
    true = erlang:port_command(Sock, [<<Kind, A:64, B:64>> | Body]),
    ok.

signal(#{os_pid := OsPid}, Sig) when is_integer(OsPid) ->
    py_nif:os_signal(OsPid, Sig);
signal(_, _) ->
    ok.

%% Internal: the child's life.

child_exited(Reason0, St = #{reqs := Reqs, killed := Killed, opts := Opts, stuck := Stuck}) ->
    Reason = case Killed of true -> killed; false -> Reason0 end,
    Reply = case Reason of
                killed -> {error, killed};
                _ -> {error, {child_exited, Reason}}
            end,
    %% Killed for a request that outlived its deadline by kill_after: the
    %% ones sent after it never started (the child was stuck in it), so the
    %% next child runs them.
    {Replay, Failed} = lists:partition(fun({Id, R}) -> is_integer(Stuck) andalso Id > Stuck
                                                           andalso R#req.live
                                       end, lists:keysort(1, maps:to_list(Reqs))),
    _ = [begin cancel_timer(R#req.timer), R#req.live andalso deliver(R, Reply) end
         || {_, R} <- Failed],
    _ = [cancel_timer(R#req.timer) || {_, R} <- Replay],
    ?LOG_NOTICE("isolated context ~p: child ~p exited (~p)",
                [self(), maps:get(os_pid, St), Reason0],
                #{domain => [erlang_python, isolated]}),
    _ = [erlang:demonitor(M, [flush]) || M <- maps:values(maps:get(watched, St))],
    St1 = close_sock(flush_output(St#{reqs := #{}, refs := #{}, order := queue:new(),
                                      killed := false, pids := #{}, watched := #{},
                                      stuck := none})),
    St2 = load_changed(St1),
    Now = erlang:monotonic_time(millisecond),
    #{restart := Restart, max_restarts := Max, restart_period := Period} = Opts,
    Recent = [T || T <- maps:get(restarts, St2), Now - T < Period],
    case Restart andalso length(Recent) < Max of
        true ->
            case start_child(St2#{restarts := [Now | Recent], port := undefined,
                                  os_pid := undefined}) of
                {ok, St3} -> {noreply, lists:foldl(fun resubmit/2, St3, Replay)};
                {error, Why} -> {stop, Why, St2}
            end;
        false ->
            {stop, {child_exited, Reason0}, St2}
    end.

close_sock(St = #{sock := undefined}) -> St;
close_sock(St = #{sock := Sock}) -> _ = gen_tcp:close(Sock), St#{sock := undefined}.

stop_child(St = #{port := Port}) ->
    _ = close_sock(St),
    _ = signal(St, ?SIGKILL),
    case Port of
        undefined -> ok;
        _ -> catch port_close(Port), ok
    end.

%% Start a child (a new process, or a fork of the context's zygote) and
%% wait until it is ready (start_timeout).
start_child(St = #{opts := Opts, gen := Gen0}) ->
    Gen = Gen0 + 1,
    How = case Opts of
              #{zygote := Z} when is_pid(Z) -> {zygote, Z};
              _ -> {port, "erlang._child"}
          end,
    case py_isolated_launch:launch(How, Opts, config(Opts, Gen), maps:get(start_timeout, Opts)) of
        {ok, #{port := Port, os_pid := OsPid, sock := Sock, info := Info, output := Out}} ->
            ok = inet:setopts(Sock, [{active, true}]),
            {ok, flush_output(St#{port := Port, os_pid := OsPid, sock := Sock, info := Info,
                                  gen := Gen, output := Out})};
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
