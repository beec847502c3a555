%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc Owner of the embedded interpreter: starts CPython in init (on the
%% NIF's own thread, off the schedulers).
%%
%% Stopping the application stops every context (and so drops every
%% process's namespace) but, by default, keeps the interpreter: the next
%% start reuses it. CPython cannot be finalized and initialized again in one
%% OS process reliably: on 3.12.1 importing `decimal' again after
%% Py_FinalizeEx aborts the VM (double free), on 3.11 `tracemalloc' stays
%% unloaded. App env `finalize_on_stop' (default false) asks for a real
%% Py_FinalizeEx, for those who need atexit handlers to run when the
%% application stops; the application cannot start again in that OS process
%% then (`{error, {python_start_failed, finalized}}').
-module(py_runtime).
-behaviour(gen_server).

-export([start_link/0]).
-export([init/1, handle_call/3, handle_cast/2, terminate/2]).

%% API.

%% @doc Start CPython with the application's environment.
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% gen_server.

%% @private
-spec init([]) -> {ok, undefined} | {stop, term()}.
init([]) ->
    process_flag(trap_exit, true),
    #{python := Exe, python_path := Paths, max_depth := Depth, atom_cap := Cap,
      alloc_cache := AllocCache} = py_opts:runtime(),
    #{policy := Policy, log_limit := LogLimit} = py_opts:sandbox(),
    ok = py_nif:sandbox_configure(Policy, LogLimit),
    %% CPython would fall back to its built-in prefix for a missing one.
    case filelib:is_regular(Exe) of
        false ->
            {stop, {python_not_found, Exe}};
        true ->
            case py_nif:runtime_start(Exe, Paths, Depth, Cap, AllocCache) of
                ok -> {ok, undefined};
                {error, Reason} -> {stop, {python_start_failed, Reason}}
            end
    end.

%% @private
-spec handle_call(term(), gen_server:from(), undefined) ->
          {reply, {error, unknown_call}, undefined}.
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_call}, State}.

%% @private
-spec handle_cast(term(), undefined) -> {noreply, undefined}.
handle_cast(_Msg, State) ->
    {noreply, State}.

%% @private
-spec terminate(term(), undefined) -> ok.
terminate(_Reason, _State) ->
    case py_opts:finalize_on_stop() of
        true -> _ = py_nif:runtime_stop(), ok;
        false -> ok
    end.
