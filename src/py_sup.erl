%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc Top supervisor.
%%
%% rest_for_one: contexts depend on the router's table and on the running
%% interpreter, so a restart of either restarts everything started after it.
%% Shutdown runs in reverse: contexts stop before Python is finalized.
-module(py_sup).
-behaviour(supervisor).

-export([start_link/0, init/1]).

%% @doc Start the top supervisor.
-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, []).

%% @private
-spec init([]) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init([]) ->
    Flags = #{strategy => rest_for_one, intensity => 5, period => 10},
    Children = [
        %% first, so that denials while Python starts are logged too
        #{id => py_sandbox_log, start => {py_sandbox_log, start_link, []}},
        %% Python's logging records and tracing spans (plain messages).
        #{id => py_logger, start => {py_logger, start_link, []}},
        #{id => py_tracer, start => {py_tracer, start_link, []}},
        #{id => py_router, start => {py_router, start_link, []}},
        %% Pools and registrations; the state py:call reads.
        #{id => py_context_router, start => {py_context_router, start_link, []}},
        %% Paths, imports, preload, venv...: what every context applies.
        #{id => py_setup, start => {py_setup, start_link, []}},
        #{id => py_runtime, start => {py_runtime, start_link, []}, shutdown => 30000},
        #{id => py_state, start => {py_state, start_link, []}},
        #{id => py_callback, start => {py_callback, start_link, []}},
        %% Pins the shared dicts and channels isolated children use.
        #{id => py_bridge, start => {py_bridge, start_link, []}},
        #{id => py_context_sup, start => {py_context_sup, start_link, []},
          type => supervisor, shutdown => infinity},
        %% Needs the contexts (it owns one); restarted with them.
        #{id => py_async, start => {py_async, start_link, []}, shutdown => 20000},
        %% The event loops of the 4.x task API (started on first use).
        #{id => py_event_loop, start => {py_event_loop, start_link, []}},
        #{id => py_event_loop_pool, start => {py_event_loop_pool, start_link, []}}
    ],
    {ok, {Flags, Children}}.
