%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc One context: a gen_server that owns the NIF resource (its lifecycle),
%% and the hot path, which runs in the caller's own process.
%%
%% A request goes straight from the caller to the context's OS thread
%% (py_nif:submit/5) and the reply straight back as a message; no Erlang
%% process sits in between. At the timeout the NIF ends the request: a
%% queued one is dropped, a running one gets `erlang.CallInterrupted' raised
%% at its next bytecode, and the one reply is `{error, timeout}'.
-module(py_context).
-behaviour(gen_server).

-export([new/1, stop/1, destroy/1, interrupt/1, python_version/0, start_link/1, resource/1]).
-export([kill/1, child_info/1]).
-export([request/3, request_pid/3, cast_pid/2, async_pid/3, cast/2, async/3, cancel/2, for_ref/1, is_ref/1,
         callback_reply/2, publish_functions/1, stream_credit/3, result/1]).
-export([init/1, handle_call/3, handle_cast/2, terminate/2]).
-export_type([payload/0, ctx/0]).

-include_lib("kernel/include/logger.hrl").

-type payload() :: tuple() | atom().
%% A context as py_router keeps it: the NIF resource, or an isolated
%% context's server (py_isolated).
-type ctx() :: py_nif:ctx() | py_isolated:ctx() | {py_remote, pid()}.

-define(HELPER, '$py_callback_helper').
-define(RETIRE, '$py_callback_helper_retire').
-define(ORIGIN, '$py_remote_origin').

%% API.

%% @doc Start an extra, supervised context. Options: `mode' (`worker', the
%% default, in the main interpreter; `owngil', a sub-interpreter with its
%% own GIL, Python 3.12+, else `{error, {owngil_unsupported, Reason}}';
%% `isolated', in a child OS process, with the options of py_isolated_opts
%% (docs/isolated.md); any other `{error, {invalid_mode, Mode}}'),
%% `preload' (Python code run on the context once it starts, after
%% py_preload's; its globals seed the namespace of every process there:
%% docs/operations.md; a failure is `{error, {preload_failed,
%% {ExceptionName, Message}}}'), `memory_limit' (bytes; no kind of context
%% built here enforces one, so as in erlang_python 4.x without its memory
%% hook: `{error, memory_limit_requires_owngil}' on a worker context,
%% `{error, memory_limits_disabled}' on an own-GIL one), `spin_us' (microseconds its
%% thread spins for new work before sleeping) and `reply_spin_us' (0..100:
%% microseconds a caller spins for its reply before it waits in `receive';
%% 0 never).
%%
%% With `node => Node' (another node, where erlang_python runs) the context
%% starts there, owned by the caller: it stops when the caller dies, and
%% calls on it work as on a local one (py_remote, docs/distributed.md).
-spec new(map()) -> {ok, pid()} | {error, term()}.
new(#{node := Node} = Opts) when is_atom(Node), Node =/= node() ->
    py_remote:new_context(Node, maps:remove(node, Opts));
new(#{node := Node} = Opts) when is_atom(Node) ->
    new(maps:remove(node, Opts));
new(#{node := Node}) ->
    erlang:error({badarg, {node, Node}});
new(Opts) when is_map(Opts) ->
    Mode = maps:get(mode, Opts, worker),
    case py_opts:mode(Mode, fun python_version/0) of
        ok when Mode =:= isolated ->
            case py_isolated_opts:validate(Opts) of
                {ok, _} ->
                    case py_context_sup:start_context(Opts) of
                        %% the supervisor's child record around the reason
                        {error, {Reason, Child}} when element(1, Child) =:= child ->
                            {error, Reason};
                        Started -> Started
                    end;
                {error, _} = Error ->
                    Error
            end;
        ok ->
            case memory_limit(Mode, maps:find(memory_limit, Opts)) of
                ok ->
                    _ = py_opts:context(maps:without([preload], Opts)),
                    _ = preload(Opts),
                    py_context_sup:start_context(Opts);
                {error, _} = Error ->
                    Error
            end;
        {error, _} = Error ->
            Error
    end;
new(Opts) ->
    erlang:error({badarg, {opts, Opts}}).

%% @doc The same as stop/1 (the 4.x name).
-spec destroy(pid()) -> ok | {error, term()}.
destroy(Pid) when is_pid(Pid) ->
    stop(Pid);
destroy(Pid) ->
    erlang:error({badarg, {context, Pid}}).

%% @doc Interrupt the request running on a context: its Python code gets
%% an exception at its next bytecode and its synchronous caller
%% `{error, interrupted}'. `not_running' when nothing runs there.
%%
%% The innermost request is the one interrupted (a request that waits for
%% an Erlang callback which called Python again runs that nested request).
-spec interrupt(pid()) -> ok | not_running | {error, term()}.
interrupt(Pid) when is_pid(Pid), node(Pid) =/= node() ->
    py_remote:on_node(Pid, interrupt);
interrupt(Pid) when is_pid(Pid) ->
    case resource(Pid) of
        {ok, {py_isolated, _, _}} -> py_isolated:interrupt(Pid);
        {ok, Ctx} -> py_nif:interrupt_running(Ctx);
        {error, not_found} -> {error, not_found}
    end;
interrupt(Pid) ->
    erlang:error({badarg, {context, Pid}}).

%% @doc The embedded Python's version `{Major, Minor, Micro}' (that of the
%% libpython the NIF loaded; no interpreter needs to run).
-spec python_version() -> {ok, {non_neg_integer(), non_neg_integer(), non_neg_integer()}}.
python_version() ->
    {ok, py_nif:python_version()}.

%% @doc Stop a context made with new/1; requests still queued on it get
%% `{error, closed}'.
-spec stop(pid()) -> ok | {error, term()}.
stop(Pid) when is_pid(Pid), node(Pid) =/= node() ->
    py_remote:on_node(Pid, stop);
stop(Pid) when is_pid(Pid) ->
    py_context_sup:stop_context(Pid).

%% @private
-spec start_link(map()) -> {ok, pid()} | {error, term()}.
start_link(#{mode := isolated} = Opts) ->
    py_isolated:start_link(Opts);
start_link(Opts) ->
    gen_server:start_link(?MODULE, Opts, []).

%% @doc Kill an isolated context's child (SIGKILL): calls in flight get
%% `{error, killed}' and a new child starts. `{error, not_isolated}' for
%% the other kinds, whose Python cannot be killed apart from the VM.
-spec kill(pid()) -> ok | {error, not_found | not_isolated}.
kill(Pid) when is_pid(Pid), node(Pid) =/= node() ->
    py_remote:on_node(Pid, kill);
kill(Pid) when is_pid(Pid) ->
    case resource(Pid) of
        {ok, {py_isolated, _, _}} -> py_isolated:kill(Pid);
        {ok, _} -> {error, not_isolated};
        {error, not_found} -> {error, not_found}
    end;
kill(Pid) ->
    erlang:error({badarg, {context, Pid}}).

%% @doc What runs an isolated context: `os_pid', `python_version',
%% `executable', `platform', `generation', `restarts'.
-spec child_info(pid()) -> {ok, map()} | {error, not_found | not_isolated}.
child_info(Pid) when is_pid(Pid), node(Pid) =/= node() ->
    py_remote:on_node(Pid, child_info);
child_info(Pid) when is_pid(Pid) ->
    case resource(Pid) of
        {ok, {py_isolated, _, _}} -> py_isolated:child_info(Pid);
        {ok, _} -> {error, not_isolated};
        {error, not_found} -> {error, not_found}
    end;
child_info(Pid) ->
    erlang:error({badarg, {context, Pid}}).

%% @doc The NIF resource behind a context pid.
-spec resource(pid()) -> {ok, ctx()} | {error, not_found}.
resource(Pid) ->
    case py_router:lookup(Pid) of
        {ok, Ctx} -> {ok, Ctx};
        error -> {error, not_found}
    end.

%% @doc Run a request on a context and wait for its result. Runs in the
%% caller's process.
-spec request(ctx(), payload(), timeout()) -> term().
request({py_remote, Pid}, Payload, Timeout) ->
    py_remote:request(Pid, Payload, Timeout);
request({py_isolated, _, _} = Ctx, Payload, Timeout) ->
    note(Ctx, continue(Ctx, py_isolated:request(Ctx, Payload, Timeout), Timeout));
request(Ctx, Payload, Timeout) ->
    note(Ctx, continue(Ctx, raw_request(Ctx, Payload, Timeout), Timeout)).

%% A Python function returned an erlang.schedule* marker
%% (priv/python/erlang/_schedule.py): the call goes on with the Erlang
%% function it names, run here, or with a new request on the same context
%% (queued behind the others: what yielding means on a context thread).
continue(Ctx, {ok, {'$py_schedule', Kind, Target, Args, Kw}}, Timeout)
  when is_list(Args), is_map(Kw) ->
    case {Kind, Target} of
        {erlang, Name} when is_binary(Name) ->
            case py_callback:run(Name, Args) of
                {ok, _} = Ok ->
                    Ok;
                {error, {erlang, _, _, _, Text}} ->
                    {error, {'ErlangError', unicode:characters_to_list(Text)}};
                {error, {not_registered, N}} ->
                    {error, {'NameError',
                             "no Erlang function is registered as " ++ binary_to_list(N)}}
            end;
        {_, {M, F}} when is_binary(M), is_binary(F) ->
            Next = {call, M, F, Args, Kw, term},
            continue(Ctx, case Ctx of
                              {py_isolated, _, _} -> py_isolated:request(Ctx, Next, Timeout);
                              _ -> raw_request(Ctx, Next, Timeout)
                          end, Timeout);
        _ ->
            {ok, {'$py_schedule', Kind, Target, Args, Kw}}
    end;
continue(_Ctx, Result, _Timeout) ->
    Result.

%% @doc Run a request on the context Pid (local or on another node) and
%% wait for its result, in the caller's process; `{error, closed}' when no
%% such context runs.
-spec request_pid(pid(), payload(), timeout()) -> term().
request_pid(Pid, Payload, Timeout) when node(Pid) =/= node() ->
    py_remote:request(Pid, Payload, Timeout);
request_pid(Pid, Payload, Timeout) ->
    py_remote:local_request(Pid, Payload, Timeout).

%% @doc Run a request on the context Pid (local or on another node) and
%% forget its result.
-spec cast_pid(pid(), payload()) -> ok.
cast_pid(Pid, Payload) when node(Pid) =/= node() ->
    _ = spawn(fun() -> py_remote:request(Pid, Payload, infinity) end),
    ok;
cast_pid(Pid, Payload) ->
    _ = case resource(Pid) of
            {ok, Ctx} -> cast(Ctx, Payload);
            {error, not_found} -> ok
        end,
    ok.

%% @doc Run a request on the context Pid (local or on another node); its
%% result comes to the caller as `{Tag, Ref, Result}'.
-spec async_pid(pid(), atom(), payload()) -> reference().
async_pid(Pid, Tag, Payload) when node(Pid) =/= node() ->
    Ref = make_ref(),
    Caller = self(),
    _ = spawn(fun() -> Caller ! {Tag, Ref, py_remote:request(Pid, Payload, infinity)} end),
    Ref;
async_pid(Pid, Tag, Payload) ->
    case resource(Pid) of
        {ok, Ctx} ->
            case async(Ctx, Tag, Payload) of
                {ok, Ref} -> Ref;
                {error, _} = Error -> sent_now(Tag, Error)
            end;
        {error, not_found} ->
            sent_now(Tag, {error, closed})
    end.

sent_now(Tag, Result) ->
    Ref = make_ref(),
    self() ! {Tag, Ref, Result},
    Ref.

%% @doc The context of a Python object reference.
-spec for_ref(term()) -> {ok, ctx()} | {error, closed}.
for_ref(Ref) when is_tuple(Ref) ->
    py_isolated:ref_context(Ref);
for_ref(Ref) ->
    py_nif:ref_context(Ref).

%% @doc Whether a term is a Python object reference.
-spec is_ref(term()) -> boolean().
is_ref(Term) when is_tuple(Term) ->
    py_isolated:is_ref(Term);
is_ref(Term) ->
    py_nif:is_ref(Term).

%% @doc Deliver the result of a Python-to-Erlang call (see py_callback).
-spec callback_reply(non_neg_integer(), py_callback:result()) -> ok | {error, not_found}.
callback_reply(Id, Result) ->
    py_nif:callback_reply(Id, Result).

%% @doc The final form of a reply's result: a reply holding dicts of more
%% than 32 keys has them built here, on the caller's scheduler (the context
%% thread must not build them: see c_src/convert/bigmap.h).
-spec result(term()) -> term().
result({py_fixup, Result}) -> py_nif:finish(Result);
result(Result) -> Result.

%% @doc Let the stream request Ref send N more items.
-spec stream_credit(ctx(), reference(), pos_integer()) -> ok | not_found.
stream_credit({py_isolated, _, _} = Ctx, Ref, N) ->
    py_isolated:stream_credit(Ctx, Ref, N);
stream_credit(Ctx, Ref, N) ->
    py_nif:stream_credit(Ctx, Ref, N).

%% @doc Tell the NIF which function names are registered.
-spec publish_functions([binary()]) -> ok.
publish_functions(Names) ->
    py_nif:callback_publish(Names).

%% The deadline is kept by the NIF (c_src/context/deadline.h): the caller waits in a
%% receive without a timer of its own, and at the deadline the reply is
%% `{error, timeout}'; the request was dropped, or interrupted. (The first
%% receive is written here rather than as a call of wait/1: in the function
%% that made the reference it skips the messages that were already queued.)
raw_request(Ctx, Payload, Timeout) ->
    Ref = make_ref(),
    case py_nif:submit(Ctx, py_reply, Ref, Payload, Timeout) of
        ReqId when is_integer(ReqId) ->
            _ = spin_for_reply(Ctx, ReqId, 0),
            receive
                {py_reply, Ref, Result} ->
                    reply(Ref, Result);
                {py_callback, Ref, Id, Name, Args} ->
                    ok = delegate(Ctx, Id, Name, Args),
                    wait(Ctx, ReqId, Ref, 1)
            end;
        {error, _} = Error ->
            Error
    end.

%% While no other process waits to run, spin (on this scheduler, for at most
%% the context's reply_spin_us) until the reply, or a callback request beyond
%% the Seen already answered, has been sent: a message that finds its
%% receiver still running is only queued, while one that finds it suspended
%% in `receive' must wake its scheduler, and a scheduler that has gone to
%% sleep costs 3-4 us to wake (bench: a sync call 1.2 us with the spin,
%% 1.6-5 us without, the mode changing from run to run).
spin_for_reply(Ctx, ReqId, Seen) ->
    case erlang:statistics(total_run_queue_lengths) of
        0 -> py_nif:reply_wait(Ctx, ReqId, Seen);
        _ -> false
    end.

wait(Ctx, ReqId, Ref, Seen) ->
    _ = spin_for_reply(Ctx, ReqId, Seen),
    receive
        {py_reply, Ref, Result} ->
            reply(Ref, Result);
        {py_callback, Ref, Id, Name, Args} ->
            ok = delegate(Ctx, Id, Name, Args),
            wait(Ctx, ReqId, Ref, Seen + 1)
    end.

%% A Python result is `{ok, _}' or `{error, {Name, _}}': `{error, timeout}'
%% comes only from the deadline, which may have crossed a callback request,
%% and may have left the helper running a function that outlived it.
reply(Ref, {error, Why} = Ended) when Why =:= timeout; Why =:= interrupted ->
    flush_callbacks(Ref),
    retire_helper(),
    Ended;
reply(_Ref, Result) ->
    result(Result).

%% Callbacks (erlang.call from the request) run in a helper process, so that
%% the caller keeps waiting with its deadline: a function that outlives the
%% deadline cannot hold the caller past it. The helper is linked to the
%% caller (one dies with the other), made on the first callback and kept:
%% its context sends it the later ones directly, one message per callback as
%% before, and its own requests (a callback that calls Python again) use the
%% caller's context and namespace. After a timeout it is retired (it may
%% still be running the late function, whose result the NIF then drops) and
%% the next callback makes a new one.
delegate(Ctx, Id, Name, Args) ->
    {Helper, Ctxs} = case get(?HELPER) of
                         undefined -> {new_helper(), []};
                         Known -> Known
                     end,
    case py_nif:callback_helper(Ctx, Helper) of
        ok ->
            put(?HELPER, {Helper, lists:usort([Ctx | Ctxs])}),
            Helper ! {py_callback, none, Id, Name, Args},
            ok;
        {error, _} ->
            put(?HELPER, {Helper, Ctxs}),
            answer(Id, Name, Args)
    end.

new_helper() ->
    Route = py_router:cached(),
    Origin = get(?ORIGIN),
    proc_lib:spawn_link(fun() ->
                                _ = put(?ORIGIN, Origin),
                                ok = py_router:adopt(Route),
                                ok = py_semaphore:exempt(),
                                helper_loop()
                        end).

%% After answering, the helper spins for the request's next callback as the
%% caller would (spin_for_reply/3): the context sends it, with each callback
%% message, the request's id and how many it has sent.
helper_loop() ->
    receive
        {py_callback, Spin, Id, Name, Args} ->
            ok = answer(Id, Name, Args),
            _ = case Spin of
                    {Ctx, ReqId, Sent} -> spin_for_reply(Ctx, ReqId, Sent);
                    none -> false
                end,
            helper_loop();
        ?RETIRE ->
            ok
    end.

retire_helper() ->
    case erase(?HELPER) of
        undefined ->
            ok;
        {Helper, Ctxs} ->
            _ = [py_nif:callback_helper(Ctx, none) || Ctx <- Ctxs],
            true = unlink(Helper),
            Helper ! ?RETIRE,
            ok
    end.

%% Run a callback here and answer it; for a proxy of a process on another
%% node (py_remote), run it there.
answer(Id, Name, Args) ->
    Result = case get(?ORIGIN) of
                 undefined -> py_callback:run(Name, Args);
                 Origin -> py_remote:forward_callback(Origin, Name, Args)
             end,
    _ = py_nif:callback_reply(Id, Result),
    ok.

%% @doc Run a request and forget its result.
-spec cast(ctx(), payload()) -> ok | {error, closed}.
cast({py_isolated, _, _} = Ctx, Payload) ->
    py_isolated:cast(Ctx, Payload);
cast(Ctx, Payload) ->
    py_nif:submit(Ctx, none, make_ref(), Payload).

%% @doc Run a request; its result comes as `{Tag, Ref, Result}'.
-spec async(ctx(), atom(), payload()) -> {ok, reference()} | {error, closed}.
async({py_isolated, _, _} = Ctx, Tag, Payload) ->
    py_isolated:async(Ctx, Tag, Payload);
async(Ctx, Tag, Payload) ->
    Ref = make_ref(),
    case py_nif:submit(Ctx, Tag, Ref, Payload) of
        ok -> {ok, Ref};
        Error -> Error
    end.

%% @doc Cancel a request made with async/3: `cancelled' (no reply will come)
%% or `not_found' (the reply is in, or on its way to, the mailbox).
-spec cancel(ctx(), reference()) -> cancelled | not_found.
cancel({py_isolated, _, _} = Ctx, Ref) ->
    py_isolated:cancel(Ctx, Ref);
cancel(Ctx, Ref) ->
    py_nif:interrupt(Ctx, Ref).

%% gen_server.

%% @private
-spec init(map()) -> {ok, py_nif:ctx()} | {stop, term()}.
init(Opts0) ->
    process_flag(trap_exit, true),
    {Default, Opts} = case maps:take(default, Opts0) of
                          error ->
                              case maps:take(pool, Opts0) of
                                  error -> {false, Opts0};
                                  {{Name, I}, Rest} -> {{pool, Name, I}, Rest}
                              end;
                          {D, Rest} -> {D, Rest}
                      end,
    Own = preload(Opts),
    #{spin_us := Spin, reply_spin_us := ReplySpin, mode := Mode} =
        py_opts:context(maps:without([preload], Opts)),
    case py_nif:context_new(self(), Spin, ReplySpin * 1000, Mode) of
        {ok, Ctx} ->
            ok = py_router:register(self(), Ctx, Default),
            %% The application's paths, imports, venv, preload... (py_setup).
            case py_setup:started(self(), Own) of
                ok ->
                    {ok, Ctx};
                {error, Reason} ->
                    ok = py_router:unregister(self()),
                    _ = py_nif:context_stop(Ctx),
                    {stop, Reason}
            end;
        {error, Reason} ->
            {stop, {context_start_failed, Reason}}
    end.

%% @private
-spec handle_call(term(), gen_server:from(), py_nif:ctx()) -> {reply, term(), py_nif:ctx()}.
handle_call(resource, _From, Ctx) ->
    {reply, {ok, Ctx}, Ctx};
handle_call(_Request, _From, Ctx) ->
    {reply, {error, unknown_call}, Ctx}.

%% @private
-spec handle_cast(term(), py_nif:ctx()) -> {noreply, py_nif:ctx()}.
handle_cast(_Msg, Ctx) ->
    {noreply, Ctx}.

%% @private
-spec terminate(term(), py_nif:ctx()) -> ok.
terminate(_Reason, Ctx) ->
    ok = py_router:unregister(self()),
    py_nif:context_stop(Ctx).

%% Internal.

%% 4.x's per-context memory cap needs Python 3.14's obmalloc hook; no kind
%% of context here has one (an isolated context's rlimits are its own
%% option).
memory_limit(_Mode, error) -> ok;
memory_limit(_Mode, {ok, N}) when not is_integer(N); N < 0 ->
    {error, {invalid_memory_limit, N}};
memory_limit(worker, {ok, _}) -> {error, memory_limit_requires_owngil};
memory_limit(_Mode, {ok, _}) -> {error, memory_limits_disabled}.

preload(Opts) ->
    case maps:find(preload, Opts) of
        error -> undefined;
        {ok, Code} when is_binary(Code); is_list(Code) ->
            case unicode:characters_to_binary(Code) of
                B when is_binary(B) -> B;
                _ -> erlang:error({badarg, {preload, Code}})
            end;
        {ok, Code} -> erlang:error({badarg, {preload, Code}})
    end.

%% A callback request sent before the interrupt is answered by nobody now.
flush_callbacks(Ref) ->
    receive
        {py_callback, Ref, Id, _, _} ->
            _ = py_nif:callback_reply(Id, {error, {erlang, exit, timeout, [], <<"timeout">>}}),
            flush_callbacks(Ref)
    after 0 ->
        ok
    end.

%% Remember where the caller's last Python error happened, for
%% py:last_traceback/0, and log its traceback at debug level.
note(Ctx, {error, {Name, _}} = Error) when is_atom(Name) ->
    put('$py_last_error_context', Ctx),
    ?LOG_DEBUG("Python error ~p:~n~ts", [Name, traceback(Ctx)]),
    Error;
note(_Ctx, Result) ->
    Result.

traceback(Ctx) ->
    Reply = case Ctx of
                {py_isolated, _, _} -> py_isolated:request(Ctx, last_traceback, 5000);
                _ -> raw_request(Ctx, last_traceback, 5000)
            end,
    case Reply of
        {ok, Text} when is_binary(Text) -> Text;
        _ -> <<"(no traceback)">>
    end.
