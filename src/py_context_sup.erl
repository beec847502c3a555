%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc Supervisor of the contexts.
%%
%% one_for_one: contexts are independent. The default contexts are permanent
%% children started with the application; contexts made with
%% py_context:new/1 are temporary (their pid is the caller's handle, so a
%% restarted one would be a different context).
-module(py_context_sup).
-behaviour(supervisor).

-export([start_link/0, start_context/1, stop_context/1, init/1]).

%% @doc Start the supervisor and the default contexts.
-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, []).

%% @doc Start one more (temporary) context.
-spec start_context(map()) -> {ok, pid()} | {error, term()}.
start_context(Opts) ->
    Id = make_ref(),
    Spec = #{id => Id, start => {py_context, start_link, [Opts]},
             restart => temporary, shutdown => 10000},
    case supervisor:start_child(?MODULE, Spec) of
        {ok, Pid} -> {ok, Pid};
        {error, Reason} -> {error, Reason}
    end.

%% @doc Stop a context started with start_context/1.
-spec stop_context(pid()) -> ok | {error, not_found}.
stop_context(Pid) ->
    Ids = [Id || {Id, P, _, _} <- supervisor:which_children(?MODULE), P =:= Pid,
                 is_reference(Id)],
    case Ids of
        [Id] -> supervisor:terminate_child(?MODULE, Id);
        [] -> {error, not_found}
    end.

%% @private
-spec init([]) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init([]) ->
    Flags = #{strategy => one_for_one, intensity => 10, period => 10},
    Defaults = [#{id => {default, I}, start => {py_context, start_link, [#{default => I}]},
                  shutdown => 10000}
                || I <- lists:seq(1, py_opts:num_contexts())],
    {ok, {Flags, Defaults}}.
