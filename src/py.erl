%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc Call Python from Erlang: the public API.
%%
%% Source-compatible with the core of erlang_python 4.x. Each calling process
%% is served by one context for life and has its own Python globals there:
%% what it `exec's is visible to its later calls and to no other process, and
%% is dropped when it dies.
%%
%% ```
%% {ok, 4.0} = py:call(math, sqrt, [16]),
%% {ok, 25} = py:eval(<<"x * y">>, #{x => 5, y => 5}),
%% ok = py:exec(<<"def double(x): return 2 * x">>),
%% {ok, 42} = py:call('__main__', double, [21]),
%% {error, {'ZeroDivisionError', "division by zero"}} = py:eval(<<"1/0">>).
%% '''
%%
%% Results are `{ok, Value}', `ok' or `{error, Reason}'; a Python exception
%% is `{error, {ExceptionName, Message}}' and py:last_traceback/0 gives its
%% traceback. Arguments of the wrong type raise `error({badarg, What})'.
-module(py).

-export([call/3, call/4, call/5, cast/3, cast/4, cast/5, spawn_call/3, spawn_call/4,
         spawn_call/5,
         await/1, await/2, eval/1, eval/2, eval/3, exec/1, exec/2, exec/3, parallel/1,
         version/0, memory_stats/0, gc/0, gc/1, context/0, context/1,
         start_contexts/0, start_contexts/1, stop_contexts/0, contexts_started/0,
         execution_mode/0, subinterp_supported/0, interrupt/1,
         register_pool/2, unregister_pool/1,
         call_method/3, getattr/2, to_term/1, is_ref/1, last_traceback/0,
         register_function/2, register_function/3, unregister_function/1,
         stream/3, stream/4, stream_eval/1, stream_eval/2,
         stream_start/3, stream_start/4, stream_ack/1, stream_ack/2, stream_cancel/1,
         state_store/2, state_fetch/1, state_remove/1, state_keys/0, state_clear/0,
         state_incr/1, state_incr/2, state_decr/1, state_decr/2,
         async_call/3, async_call/4, async_await/1, async_await/2,
         async_gather/1, async_gather/2]).
%% Operations (docs/logging.md, docs/tracing.md, docs/operations.md).
-export([configure_logging/0, configure_logging/1,
         enable_tracing/0, disable_tracing/0, get_traces/0, clear_traces/0,
         tracemalloc_start/0, tracemalloc_start/1, tracemalloc_stop/0,
         activate_venv/1, deactivate_venv/0, venv_info/0, ensure_venv/2, ensure_venv/3,
         reload/1]).
-export([shared_dict_new/0, shared_dict_get/2, shared_dict_get/3, shared_dict_set/3,
         shared_dict_del/2, shared_dict_keys/1, shared_dict_destroy/1]).
%% More than the 40 exports a module should have: the names and arities are those of
%% erlang_python 4.x, which user code calls as py:Name; the work is done in
%% py_context, py_callback and py_state.
-export_type([py_result/0, py_module/0, py_func/0, py_args/0, py_kwargs/0,
              call_opts/0, exec_opts/0]).

-type py_result() :: {ok, term()} | {error, term()}.
-type py_module() :: atom() | binary() | string().
-type py_func() :: atom() | binary() | string().
-type py_args() :: [term()].
-type py_kwargs() :: #{atom() | binary() => term()}.
-type code() :: binary() | string() | iolist().
%% Options of call/5 with an explicit context.
-type call_opts() :: #{kwargs => py_kwargs(), timeout => timeout(),
                       return => term | ref}.
%% Options of exec/2,3.
-type exec_opts() :: #{timeout => timeout()}.

-define(TIMEOUT, 30000).

%% API.

%% @doc Call `Module.Func(*Args)'. `Module' `` '__main__' '' is the caller's own
%% namespace (functions defined with exec/1). The call goes to the pool
%% registered for it (register_pool/2), else to the caller's context, and
%% takes a slot of py_semaphore while it runs.
-spec call(py_module(), py_func(), py_args()) -> py_result().
call(Module, Func, Args) ->
    py_request:dispatch(Module, Func, py_request:call_payload(Module, Func, Args, #{}, term), ?TIMEOUT).

%% @doc `call(Module, Func, Args, KwArgs)', `call(Pool, Module, Func, Args)'
%% on a pool (an atom; the fourth argument is then a list), or
%% `call(Ctx, Module, Func, Args)' on an explicit context.
-spec call(py_module(), py_func(), py_args(), py_kwargs()) -> py_result();
          (atom(), py_module(), py_func(), py_args()) -> py_result();
          (pid(), py_module(), py_func(), py_args()) -> py_result().
call(Ctx, Module, Func, Args) when is_pid(Ctx) ->
    call(Ctx, Module, Func, Args, #{});
call(Pool, Module, Func, Args) when is_atom(Pool), is_list(Args) ->
    case is_name(Func) of
        true -> call(Pool, Module, Func, Args, #{});
        false -> erlang:error({badarg, {kwargs, Args}}) %% call(M, F, Args, NotAMap)
    end;
call(Module, Func, Args, Kwargs) ->
    call(Module, Func, Args, Kwargs, ?TIMEOUT).

%% @doc `call(Module, Func, Args, KwArgs, Timeout)',
%% `call(Pool, Module, Func, Args, KwArgs)' on a pool (30 s; a pool that
%% does not run gives `{error, {pool_not_started, Pool}}'), or
%% `call(Ctx, Module, Func, Args, Opts)' with options `kwargs', `timeout'
%% (default `infinity') and `return' (`ref' for an opaque object reference).
-spec call(py_module(), py_func(), py_args(), py_kwargs(), timeout()) -> py_result();
          (atom(), py_module(), py_func(), py_args(), py_kwargs()) -> py_result();
          (pid(), py_module(), py_func(), py_args(), call_opts()) -> py_result().
call(Ctx, Module, Func, Args, Opts) when is_pid(Ctx), is_map(Opts) ->
    #{kwargs := Kw, timeout := Timeout, return := Return} = py_request:call_opts(Opts),
    py_request:on(Ctx, py_request:call_payload(Module, Func, Args, Kw, Return), Timeout);
call(Ctx, _Module, _Func, _Args, Opts) when is_pid(Ctx) ->
    erlang:error({badarg, {opts, Opts}});
call(Pool, Module, Func, Args, Kwargs) when is_atom(Pool), is_list(Args), is_map(Kwargs) ->
    case is_name(Func) of
        true ->
            Payload = py_request:call_payload(Module, Func, Args, Kwargs, term),
            py_request:limited(Pool, py_context_router:limit(), Payload, ?TIMEOUT);
        false ->
            erlang:error({badarg, {kwargs, Args}})
    end;
call(Module, Func, Args, Kwargs, Timeout) ->
    py_request:dispatch(Module, Func, py_request:call_payload(Module, Func, Args, Kwargs, term), py_request:timeout(Timeout)).

%% @doc Call and forget the result.
-spec cast(py_module(), py_func(), py_args()) -> ok.
cast(Module, Func, Args) ->
    cast(Module, Func, Args, #{}).

%% @doc Call with keyword arguments and forget the result, or
%% `cast(Ctx, Module, Func, Args)' on an explicit context.
-spec cast(py_module(), py_func(), py_args(), py_kwargs()) -> ok;
          (pid(), py_module(), py_func(), py_args()) -> ok.
cast(Ctx, Module, Func, Args) when is_pid(Ctx) ->
    cast(Ctx, Module, Func, Args, #{});
cast(Module, Func, Args, Kwargs) ->
    Payload = py_request:call_payload(Module, Func, Args, Kwargs, term),
    _ = py_request:with_route(fun(Ctx) -> py_context:cast(Ctx, Payload) end),
    ok.

%% @doc `cast(Ctx, Module, Func, Args, Kwargs)': forget the result of a call
%% on an explicit context (local, or on another node).
-spec cast(pid(), py_module(), py_func(), py_args(), py_kwargs()) -> ok.
cast(Ctx, Module, Func, Args, Kwargs) when is_pid(Ctx) ->
    py_context:cast_pid(Ctx, py_request:call_payload(Module, Func, Args, Kwargs, term));
cast(Ctx, _Module, _Func, _Args, _Kwargs) ->
    erlang:error({badarg, {context, Ctx}}).

%% @doc Start a call; its result arrives as `{py_response, Ref, Result}'
%% (await/1,2 receives it).
-spec spawn_call(py_module(), py_func(), py_args()) -> reference().
spawn_call(Module, Func, Args) ->
    spawn_call(Module, Func, Args, #{}).

%% @doc Start a call with keyword arguments, or `spawn_call(Ctx, Module,
%% Func, Args)' on an explicit context; see spawn_call/3.
-spec spawn_call(py_module(), py_func(), py_args(), py_kwargs()) -> reference();
                (pid(), py_module(), py_func(), py_args()) -> reference().
spawn_call(Ctx, Module, Func, Args) when is_pid(Ctx) ->
    spawn_call(Ctx, Module, Func, Args, #{});
spawn_call(Module, Func, Args, Kwargs) ->
    Payload = py_request:call_payload(Module, Func, Args, Kwargs, term),
    case py_request:with_route(fun(Ctx) -> py_context:async(Ctx, py_response, Payload) end) of
        {ok, Ref} ->
            Ref;
        {error, Reason} ->
            Ref = make_ref(),
            self() ! {py_response, Ref, {error, Reason}},
            Ref
    end.

%% @doc `spawn_call(Ctx, Module, Func, Args, Kwargs)' on an explicit context
%% (local, or on another node): the result arrives as
%% `{py_response, Ref, Result}'.
-spec spawn_call(pid(), py_module(), py_func(), py_args(), py_kwargs()) -> reference().
spawn_call(Ctx, Module, Func, Args, Kwargs) when is_pid(Ctx) ->
    py_context:async_pid(Ctx, py_response, py_request:call_payload(Module, Func, Args, Kwargs, term));
spawn_call(Ctx, _Module, _Func, _Args, _Kwargs) ->
    erlang:error({badarg, {context, Ctx}}).

%% @doc Wait (30 s) for the result of spawn_call/3,4,5.
-spec await(reference()) -> py_result().
await(Ref) ->
    await(Ref, ?TIMEOUT).

%% @doc Wait for the result of spawn_call/3,4; `{error, timeout}' after
%% Timeout ms (the result then arrives later as a message).
-spec await(reference(), timeout()) -> py_result().
await(Ref, Timeout) when is_reference(Ref) ->
    receive
        {py_response, Ref, Result} -> Result
    after py_request:timeout(Timeout) ->
        {error, timeout}
    end;
await(Ref, _) ->
    erlang:error({badarg, {ref, Ref}}).

%% @doc Evaluate a Python expression in the caller's namespace.
-spec eval(code()) -> py_result().
eval(Code) ->
    eval(Code, #{}, ?TIMEOUT).

%% @doc `eval(Code, Locals)' with extra names, or `eval(Ctx, Code)'.
-spec eval(code(), map()) -> py_result();
          (pid(), code()) -> py_result().
eval(Ctx, Code) when is_pid(Ctx) ->
    eval(Ctx, Code, #{});
eval(Code, Locals) ->
    eval(Code, Locals, ?TIMEOUT).

%% @doc `eval(Code, Locals, Timeout)', or `eval(Ctx, Code, Locals)'.
-spec eval(code(), map(), timeout()) -> py_result();
          (pid(), code(), map()) -> py_result().
eval(Ctx, Code, Locals) when is_pid(Ctx) ->
    py_request:on(Ctx, py_request:eval_payload(Code, Locals), infinity);
eval(Code, Locals, Timeout) ->
    py_request:run(py_request:eval_payload(Code, Locals), py_request:timeout(Timeout)).

%% @doc Execute Python statements in the caller's namespace (30 s timeout).
-spec exec(code()) -> ok | {error, term()}.
exec(Code) ->
    exec(Code, #{}).

%% @doc `exec(Code, Opts)' with option `timeout' (ms or `infinity', default
%% 30 s), or `exec(Ctx, Code)' on an explicit context. At the timeout the
%% running code is interrupted (`erlang.CallInterrupted') and the result is
%% `{error, timeout}'.
-spec exec(code(), exec_opts()) -> ok | {error, term()};
          (pid(), code()) -> ok | {error, term()}.
exec(Ctx, Code) when is_pid(Ctx) ->
    exec(Ctx, Code, #{});
exec(Code, Opts) when is_map(Opts) ->
    #{timeout := Timeout} = py_request:exec_opts(Opts),
    py_request:run({exec, py_request:code(Code)}, Timeout);
exec(_Code, Opts) ->
    erlang:error({badarg, {opts, Opts}}).

%% @doc Execute Python statements on an explicit context; options as exec/2.
-spec exec(pid(), code(), exec_opts()) -> ok | {error, term()}.
exec(Ctx, Code, Opts) when is_pid(Ctx), is_map(Opts) ->
    #{timeout := Timeout} = py_request:exec_opts(Opts),
    py_request:on(Ctx, {exec, py_request:code(Code)}, Timeout);
exec(Ctx, _Code, Opts) when is_pid(Ctx) ->
    erlang:error({badarg, {opts, Opts}});
exec(Ctx, _Code, _Opts) ->
    erlang:error({badarg, {context, Ctx}}).

%% @doc Run calls side by side, one per default context in turn (30 s in
%% all): `{ok, Values}' in order, or the first `{error, Reason}' to come
%% (`{error, timeout}' at the timeout). The calls still running then are
%% interrupted, and none of their replies is left in the caller's mailbox.
-spec parallel([{py_module(), py_func(), py_args()}]) -> py_result().
parallel(Calls) when is_list(Calls) ->
    Payloads = [case C of
                    {M, F, A} -> py_request:call_payload(M, F, A, #{}, term);
                    _ -> erlang:error({badarg, {call, C}})
                end || C <- Calls],
    py_request:parallel(Payloads, ?TIMEOUT);
parallel(Calls) ->
    erlang:error({badarg, {calls, Calls}}).

%% @doc The embedded Python's `sys.version'.
-spec version() -> {ok, binary()} | {error, term()}.
version() ->
    eval(<<"__import__('sys').version">>).

%% @doc Python memory statistics: `gc_count', `gc_threshold', `gc_stats',
%% when tracemalloc traces `traced_memory_current'/`_peak', and the
%% large-block allocator's `alloc_*' counters (`alloc_large_bytes' live,
%% `alloc_cache_bytes' freed and kept for reuse, `alloc_reused'...).
-spec memory_stats() -> {ok, map()} | {error, term()}.
memory_stats() ->
    call('erlang._runtime', memory_stats, []).

%% @doc A full garbage collection; the number of objects collected. It also
%% returns the freed large blocks kept for reuse to the system.
-spec gc() -> {ok, non_neg_integer()} | {error, term()}.
gc() ->
    gc(2).

%% @doc Collect generations 0..Generation; generation 2 also returns the
%% freed large blocks kept for reuse to the system.
-spec gc(0..2) -> {ok, non_neg_integer()} | {error, term()}.
gc(Generation) when Generation =:= 0; Generation =:= 1; Generation =:= 2 ->
    call('erlang._runtime', collect, [Generation]);
gc(Generation) ->
    erlang:error({badarg, {generation, Generation}}).

%% @doc The calling process's context (chosen on its first call, then kept).
-spec context() -> pid().
context() ->
    case py_router:route() of
        none -> erlang:error(not_running);
        {Pid, _} -> Pid
    end.

%% @doc The N-th default context.
-spec context(pos_integer()) -> pid().
context(N) when is_integer(N), N > 0 ->
    case lists:nth(N, py_router:defaults() ++ lists:duplicate(N, none)) of
        {Pid, _} -> Pid;
        none -> erlang:error({badarg, {context, N}})
    end;
context(N) ->
    erlang:error({badarg, {context, N}}).

%% @doc Start the default contexts: start_contexts(#{}).
-spec start_contexts() -> {ok, [pid()]} | {error, term()}.
start_contexts() ->
    start_contexts(#{}).

%% @doc (Re)start the default contexts (the `default' pool): options
%% `contexts' (default app env `num_contexts') and `mode' (default app env
%% `context_mode'; `worker' or `owngil', py_context:new/1).
%% Processes served by the old ones move to new ones at their next call,
%% without their namespaces.
-spec start_contexts(#{contexts => pos_integer(), mode => py_opts:mode()}) ->
          {ok, [pid()]} | {error, term()}.
start_contexts(Opts) ->
    #{contexts := N, mode := Mode} = py_opts:start_contexts(Opts),
    case py_opts:mode(Mode, fun py_context:python_version/0) of
        ok ->
            try py_context_sup:start_defaults(N, Mode)
            catch exit:{noproc, _} -> {error, not_running}
            end;
        {error, _} = Error ->
            Error
    end.

%% @doc Stop the default contexts (until start_contexts/0,1).
-spec stop_contexts() -> ok.
stop_contexts() ->
    try py_context_sup:stop_defaults()
    catch exit:{noproc, _} -> ok
    end.

%% @doc Whether default contexts run.
-spec contexts_started() -> boolean().
contexts_started() ->
    py_router:defaults() =/= [].

%% @doc The default contexts' mode (app env `context_mode').
-spec execution_mode() -> worker | owngil.
execution_mode() ->
    py_opts:context_mode().

%% @doc Whether the embedded Python has subinterpreters with their own GIL
%% (3.12 or later).
-spec subinterp_supported() -> boolean().
subinterp_supported() ->
    {ok, V} = py_context:python_version(),
    V >= {3, 12, 0}.

%% @doc Interrupt what runs on a context: py_context:interrupt/1.
-spec interrupt(pid()) -> ok | not_running | {error, not_found | not_supported}.
interrupt(Ctx) ->
    py_context:interrupt(Ctx).

%% @doc Send the calls (call/3-5) of a module, or of `{Module, Func}', to a
%% pool: `{M, F}' beats `M' beats `default'. Names may be atoms, binaries
%% or strings (`json' and `<<"json">>' are the same module).
-spec register_pool(atom(), py_module() | {py_module(), py_func()}) -> ok | {error, not_running}.
register_pool(Pool, Key) ->
    py_context_router:register_pool(Pool, Key).

%% @doc Remove a registration of register_pool/2.
-spec unregister_pool(py_module() | {py_module(), py_func()}) -> ok | {error, not_running}.
unregister_pool(Key) ->
    py_context_router:unregister_pool(Key).

%% @doc Call a method of a Python object reference.
-spec call_method(reference(), py_func(), py_args()) -> py_result().
call_method(Ref, Method, Args) ->
    py_request:on_ref(Ref, {call_method, Ref, py_request:name(method, Method), py_request:args(Args), #{}, term}).

%% @doc An attribute of a Python object reference.
-spec getattr(reference(), py_func()) -> py_result().
getattr(Ref, Name) ->
    py_request:on_ref(Ref, {getattr, Ref, py_request:name(attribute, Name), term}).

%% @doc Convert the object behind a reference to a term.
-spec to_term(reference()) -> py_result().
to_term(Ref) ->
    py_request:on_ref(Ref, {to_term, Ref}).

%% @doc Whether a term is a Python object reference.
-spec is_ref(term()) -> boolean().
is_ref(Term) ->
    py_context:is_ref(Term).

%% @doc The formatted traceback of the caller's last Python error, or `none'.
-spec last_traceback() -> binary() | none.
last_traceback() ->
    case get('$py_last_error_context') of
        undefined -> none;
        Ctx ->
            case py_context:request(Ctx, last_traceback, ?TIMEOUT) of
                {ok, Text} when is_binary(Text) -> Text;
                _ -> none
            end
    end.

%% @doc Expose an Erlang fun to Python as `Name': Python's
%% `erlang.call(Name, *Args)', `erlang.Name(*Args)' and
%% `from erlang import Name' call `Fun(Args)' in the callback helper of the
%% Erlang process whose request is running (a process linked to it, which
%% shares its context and namespace; docs/callbacks.md), or in a fresh
%% process (Python threads, requests nobody waits for).
-spec register_function(atom() | binary(), fun(([term()]) -> term())) -> ok.
register_function(Name, Fun) when is_function(Fun, 1) ->
    py_callback:register_function(fname(Name), Fun);
register_function(_Name, Fun) ->
    erlang:error({badarg, {function, Fun}}).

%% @doc Expose `Module:Function(Args)' to Python as `Name'.
-spec register_function(atom() | binary(), module(), atom()) -> ok.
register_function(Name, Module, Function) when is_atom(Module), is_atom(Function) ->
    py_callback:register_function(fname(Name), {Module, Function});
register_function(_Name, Module, Function) ->
    erlang:error({badarg, {function, {Module, Function}}}).

%% @doc Remove a function registered for Python.
-spec unregister_function(atom() | binary()) -> ok.
unregister_function(Name) ->
    py_callback:unregister_function(fname(Name)).

%% @doc All the items of the generator (or any iterable, sync or async)
%% that `Module.Func(*Args)' returns, as a list.
-spec stream(py_module(), py_func(), py_args()) -> py_result().
stream(Module, Func, Args) ->
    stream(Module, Func, Args, #{}).

%% @doc stream/3 with keyword arguments.
-spec stream(py_module(), py_func(), py_args(), py_kwargs()) -> py_result().
stream(Module, Func, Args, Kwargs) ->
    py_request:run(py_request:call_payload(Module, Func, Args, Kwargs, list), ?TIMEOUT).

%% @doc All the items of the iterable a Python expression evaluates to:
%% `{ok, [0, 1, 4, 9, 16]} = py:stream_eval(<<"(x**2 for x in range(5))">>)'.
-spec stream_eval(code()) -> py_result().
stream_eval(Code) ->
    stream_eval(Code, #{}).

%% @doc stream_eval/1 with local names.
-spec stream_eval(code(), map()) -> py_result().
stream_eval(Code, Locals) ->
    {eval, C, L, term} = py_request:eval_payload(Code, Locals),
    py_request:run({eval, C, L, list}, ?TIMEOUT).

%% @doc Stream the items of `Module.Func(*Args)' to the caller as messages
%% `{py_stream, Ref, {data, Item}}', then `{py_stream, Ref, done}' or
%% `{py_stream, Ref, {error, Reason}}'; see stream_start/4.
-spec stream_start(py_module(), py_func(), py_args()) -> {ok, reference()} | {error, term()}.
stream_start(Module, Func, Args) ->
    stream_start(Module, Func, Args, #{}).

%% @doc stream_start/3 with options: `kwargs', `window' (default 64):
%% Python sends at most that many items ahead of the consumer, which
%% acknowledges the items it has handled with stream_ack/1,2; and `owner'
%% (a local pid, default the caller): the process the messages go to. With
%% another owner there is no window unless one is given (the caller then
%% acknowledges), and the owner's death stops the stream at its next item.
-spec stream_start(py_module(), py_func(), py_args(),
                   #{kwargs => py_kwargs(), window => pos_integer(), owner => pid()}) ->
          {ok, reference()} | {error, term()}.
stream_start(Module, Func, Args, Opts) when is_map(Opts) ->
    Kw = py_request:kwargs(maps:get(kwargs, Opts, #{})),
    Owner = case maps:get(owner, Opts, self()) of
                O when is_pid(O), node(O) =:= node() -> O;
                O -> erlang:error({badarg, {owner, O}})
            end,
    %% An owner acknowledges nothing unless a window is asked for (4.x has
    %% no window); the acknowledgements then come from the caller.
    Default = case Owner =:= self() of true -> 64; false -> 16#7fffffff end,
    Window = case maps:get(window, Opts, Default) of
                 W when is_integer(W), W > 0, W =< 16#7fffffff -> W;
                 W -> erlang:error({badarg, {window, W}})
             end,
    Mode = case Owner =:= self() of
               true -> {stream, Window};
               false -> {stream, Window, Owner}
           end,
    Payload = py_request:call_payload(Module, Func, Args, Kw, Mode),
    py_request:with_route(fun(Ctx) ->
                       case py_context:async(Ctx, py_stream, Payload) of
                           {ok, Ref} -> put({'$py_stream', Ref}, Ctx), {ok, Ref};
                           Error -> Error
                       end
               end);
stream_start(_Module, _Func, _Args, Opts) ->
    erlang:error({badarg, {opts, Opts}}).

%% @doc Acknowledge one handled stream item (Python may send one more).
-spec stream_ack(reference()) -> ok.
stream_ack(Ref) ->
    stream_ack(Ref, 1).

%% @doc Acknowledge N handled stream items.
-spec stream_ack(reference(), pos_integer()) -> ok.
stream_ack(Ref, N) when is_integer(N), N > 0 ->
    case get({'$py_stream', Ref}) of
        undefined -> ok;
        Ctx -> _ = py_context:stream_credit(Ctx, Ref, N), ok
    end;
stream_ack(_Ref, N) ->
    erlang:error({badarg, {n, N}}).

%% @doc Stop a stream: the generator is interrupted (its `finally' runs)
%% and no message of the stream stays in the caller's mailbox.
-spec stream_cancel(reference()) -> ok.
stream_cancel(Ref) ->
    case erase({'$py_stream', Ref}) of
        undefined -> ok;
        Ctx ->
            case py_context:cancel(Ctx, Ref) of
                cancelled -> ok;
                not_found -> receive {py_stream, Ref, done} -> ok;
                                     {py_stream, Ref, {error, _}} -> ok
                             end
            end,
            flush_stream(Ref)
    end.

%% @doc Store a value under Key in the state shared with Python
%% (`erlang.state_get(Key)').
-spec state_store(term(), term()) -> ok.
state_store(Key, Value) -> py_state:store(Key, Value).

%% @doc The value stored under Key.
-spec state_fetch(term()) -> {ok, term()} | {error, not_found}.
state_fetch(Key) -> py_state:fetch(Key).

%% @doc Remove Key from the shared state.
-spec state_remove(term()) -> ok.
state_remove(Key) -> py_state:remove(Key).

%% @doc All keys of the shared state.
-spec state_keys() -> [term()].
state_keys() -> py_state:keys().

%% @doc Remove every key of the shared state.
-spec state_clear() -> ok.
state_clear() -> py_state:clear().

%% @doc Atomically add 1 to the counter Key (missing counts as 0).
-spec state_incr(term()) -> integer().
state_incr(Key) -> py_state:incr(Key, 1).

%% @doc Atomically add N to the counter Key.
-spec state_incr(term(), integer()) -> integer().
state_incr(Key, N) -> py_state:incr(Key, N).

%% @doc Atomically subtract 1 from the counter Key.
-spec state_decr(term()) -> integer().
state_decr(Key) -> py_state:incr(Key, -1).

%% @doc Atomically subtract N from the counter Key.
-spec state_decr(term(), integer()) -> integer().
state_decr(Key, N) when is_integer(N) -> py_state:incr(Key, -N);
state_decr(_Key, N) -> erlang:error({badarg, {n, N}}).

%% @doc Start `Module.Func(*Args)' on the shared asyncio loop and return at
%% once. A coroutine function runs as a task, a plain function in the loop's
%% executor; async_await/1,2 collects the result (a message
%% `{py_async, Ref, Result}'). If the caller dies, its calls are cancelled.
-spec async_call(py_module(), py_func(), py_args()) -> reference().
async_call(Module, Func, Args) ->
    async_call(Module, Func, Args, #{}).

%% @doc async_call/3 with keyword arguments.
-spec async_call(py_module(), py_func(), py_args(), py_kwargs()) -> reference().
async_call(Module, Func, Args, Kwargs) ->
    py_async:call(py_request:name(module, Module), py_request:name(function, Func), py_request:args(Args), py_request:kwargs(Kwargs)).

%% @doc Wait (30 s) for the result of async_call/3,4.
-spec async_await(reference()) -> py_result().
async_await(Ref) ->
    async_await(Ref, ?TIMEOUT).

%% @doc Wait for the result of async_call/3,4. After Timeout ms the call is
%% cancelled (the coroutine gets `CancelledError', its `finally' runs), the
%% result is `{error, timeout}' and no message of the call stays behind.
-spec async_await(reference(), timeout()) -> py_result().
async_await(Ref, Timeout) when is_reference(Ref) ->
    py_async:await(Ref, py_request:timeout(Timeout));
async_await(Ref, _) ->
    erlang:error({badarg, {ref, Ref}}).

%% @doc Run `{Module, Func, Args}' (or `{Module, Func, Args, KwArgs}') calls
%% side by side on the shared loop (30 s): `{ok, Results}' in order, or as
%% soon as one fails `{error, {N, Call, Reason}}' (N counts from 1), the
%% others being cancelled.
-spec async_gather([tuple()]) -> py_result().
async_gather(Calls) ->
    async_gather(Calls, ?TIMEOUT).

%% @doc async_gather/1 with a timeout: `{error, timeout}' cancels every
%% call still running.
-spec async_gather([tuple()], timeout()) -> py_result().
async_gather(Calls, Timeout) when is_list(Calls) ->
    Checked = [case C of
                   {M, F, A} -> {py_request:name(module, M), py_request:name(function, F), py_request:args(A), #{}, C};
                   {M, F, A, Kw} -> {py_request:name(module, M), py_request:name(function, F), py_request:args(A), py_request:kwargs(Kw), C};
                   _ -> erlang:error({badarg, {call, C}})
               end || C <- Calls],
    py_async:gather(Checked, py_request:timeout(Timeout));
async_gather(Calls, _) ->
    erlang:error({badarg, {calls, Calls}}).

%% @doc Send Python's `logging' records to OTP logger from `debug' up
%% (configure_logging(#{})).
-spec configure_logging() -> ok.
configure_logging() ->
    configure_logging(#{}).

%% @doc Route Python's `logging' to OTP logger in every context, now and
%% in those started later: options `level' (`debug' (the default),
%% `info', `warning', `error' or `critical'; the root logger's and the
%% handler's level, so records below it never leave Python) and `format'
%% (a `logging.Formatter' format string; default `"%(message)s"').
%% Without it, records from `warning' up go to OTP logger.
-spec configure_logging(#{level => debug | info | warning | error | critical,
                          format => binary() | string()}) -> ok.
configure_logging(Opts) when is_map(Opts) ->
    {Level, Format} = maps:fold(
                        fun(level, L, {_, F}) -> {log_level(L), F};
                           (format, F, {L, _}) -> {L, py_request:name(format, F)};
                           (K, V, _) -> erlang:error({badarg, {K, V}})
                        end, {10, undefined}, Opts),
    Version = erlang:unique_integer([monotonic, positive]),
    setup_change(fun(S) -> S#{log_level := Level, log_format := Format, log_version := Version} end);
configure_logging(Opts) ->
    erlang:error({badarg, {opts, Opts}}).

%% @doc Record the spans of `erlang.Span' and `@erlang.trace' in every
%% context (docs/tracing.md).
-spec enable_tracing() -> ok.
enable_tracing() ->
    setup_change(fun(S) -> S#{tracing := true} end).

%% @doc Stop recording spans (those kept stay until clear_traces/0).
-spec disable_tracing() -> ok.
disable_tracing() ->
    setup_change(fun(S) -> S#{tracing := false} end).

%% @doc The spans recorded, the first ended first (at most the app env
%% `trace_buffer' of the most recent; py_tracer:stats/0 counts the dropped).
-spec get_traces() -> {ok, [map()]}.
get_traces() ->
    {ok, py_tracer:spans()}.

%% @doc Drop the spans recorded.
-spec clear_traces() -> ok.
clear_traces() ->
    py_tracer:clear().

%% @doc tracemalloc_start(1).
-spec tracemalloc_start() -> ok | {error, term()}.
tracemalloc_start() ->
    tracemalloc_start(1).

%% @doc Start Python's tracemalloc, keeping `NFrames' frames a trace, in
%% the main interpreter (the caller's context must be a worker context);
%% memory_stats/0 then has `traced_memory_current' and `traced_memory_peak'.
-spec tracemalloc_start(pos_integer()) -> ok | {error, term()}.
tracemalloc_start(NFrames) when is_integer(NFrames), NFrames > 0 ->
    none_ok(call('erlang._runtime', tracemalloc_start, [NFrames]));
tracemalloc_start(NFrames) ->
    erlang:error({badarg, {nframes, NFrames}}).

%% @doc Stop tracemalloc (its traces are dropped).
-spec tracemalloc_stop() -> ok | {error, term()}.
tracemalloc_stop() ->
    none_ok(call('erlang._runtime', tracemalloc_stop, [])).

%% @doc Activate a virtual environment in every context, now and in those
%% started later (py_venv:activate/1).
-spec activate_venv(string() | binary()) -> ok | {error, term()}.
activate_venv(Path) ->
    py_venv:activate(Path).

%% @doc Deactivate the active virtual environment everywhere.
-spec deactivate_venv() -> ok.
deactivate_venv() ->
    py_venv:deactivate().

%% @doc The active virtual environment: `{ok, #{<<"active">> => false}}'
%% or `{ok, #{<<"active">> => true, <<"venv_path">> => _,
%% <<"site_packages">> => _, <<"sys_path">> => _}}'.
-spec venv_info() -> {ok, map()} | {error, term()}.
venv_info() ->
    py_venv:info().

%% @doc ensure_venv(Path, ReqFile, []).
-spec ensure_venv(string() | binary(), string() | binary()) -> ok | {error, term()}.
ensure_venv(Path, ReqFile) ->
    ensure_venv(Path, ReqFile, []).

%% @doc Create the venv at `Path' unless it exists, install `ReqFile' into
%% it (uv when on the PATH, else pip; through ports, no shell) and activate
%% it; options and errors as py_venv:ensure/3.
-spec ensure_venv(string() | binary(), string() | binary(), py_venv:ensure_opts()) ->
          ok | {error, term()}.
ensure_venv(Path, ReqFile, Opts) ->
    py_venv:ensure(Path, ReqFile, Opts).

%% @doc `importlib.reload' a module in every interpreter that has imported
%% it (once per interpreter: worker contexts share one): `ok', or
%% `{error, [{Context, Reason}]}'.
-spec reload(py_module()) -> ok | {error, [{pid(), term()}]}.
reload(Module) ->
    Name = py_request:name(module, Module),
    Token = erlang:unique_integer([positive]),
    Results = py_setup:on_all(fun(Ctx) ->
                                      call(Ctx, 'erlang._setup', reload, [Name, Token],
                                           #{timeout => ?TIMEOUT})
                              end, ?TIMEOUT),
    case [{Ctx, E} || {Ctx, {error, E}} <- Results] of
        [] -> ok;
        Errors -> {error, Errors}
    end.

%% @doc A shared dict: a key-value table Erlang and Python (every context,
%% every thread) read and write; Python wraps it as `erlang.SharedDict(SD)'.
%% Keys and values are any terms, kept as terms (docs/shared_dict.md). It is
%% owned by the caller: destroyed when the caller dies.
-spec shared_dict_new() -> {ok, reference()}.
shared_dict_new() ->
    py_shared:sdict_new().

%% @doc The value under Key, or `undefined'. A destroyed dict raises
%% `{badarg, shared_dict_destroyed}'; a term that is no dict `badarg'.
-spec shared_dict_get(reference(), term()) -> term().
shared_dict_get(SD, Key) ->
    py_shared:sdict_get(SD, Key, undefined).

%% @doc The value under Key, or Default.
-spec shared_dict_get(reference(), term(), term()) -> term().
shared_dict_get(SD, Key, Default) ->
    py_shared:sdict_get(SD, Key, Default).

%% @doc Store Value under Key.
-spec shared_dict_set(reference(), term(), term()) -> ok.
shared_dict_set(SD, Key, Value) ->
    py_shared:sdict_set(SD, Key, Value).

%% @doc Remove Key (`ok' when it is absent).
-spec shared_dict_del(reference(), term()) -> ok.
shared_dict_del(SD, Key) ->
    py_shared:sdict_del(SD, Key).

%% @doc The keys, in no particular order.
-spec shared_dict_keys(reference()) -> [term()].
shared_dict_keys(SD) ->
    py_shared:sdict_keys(SD).

%% @doc Destroy the dict now: its entries are freed and every later use,
%% from Erlang or Python, is an error. Idempotent.
-spec shared_dict_destroy(reference()) -> ok.
shared_dict_destroy(SD) ->
    py_shared:sdict_destroy(SD).

%% Internal.

flush_stream(Ref) ->
    receive {py_stream, Ref, _} -> flush_stream(Ref)
    after 0 -> ok
    end.

fname(Name) when is_atom(Name); is_binary(Name) -> Name;
fname(Name) -> erlang:error({badarg, {name, Name}}).

%% The third argument of call(Pool, M, F, A[, Kw]) names a function: an
%% atom, a binary or a printable string. (A list of arguments in its place
%% with a list fourth is call(M, F, Args, Kw) with keyword arguments that
%% are not a map.)
is_name(F) when is_atom(F); is_binary(F) -> true;
is_name([_ | _] = F) -> io_lib:printable_unicode_list(F);
is_name(_) -> false.

log_level(debug) -> 10;
log_level(info) -> 20;
log_level(warning) -> 30;
log_level(error) -> 40;
log_level(critical) -> 50;
log_level(L) -> erlang:error({badarg, {level, L}}).

setup_change(Fun) ->
    case py_setup:change(Fun) of
        {error, Reason} -> erlang:error(Reason);
        {_, _, _} -> ok
    end.

none_ok({ok, none}) -> ok;
none_ok(Other) -> Other.
