%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc Supervisor of the contexts.
%%
%% one_for_one: contexts are independent. The default contexts are permanent
%% children started with the application; contexts made with
%% py_context:new/1 are temporary (their pid is the caller's handle, so a
%% restarted one would be a different context).
-module(py_context_sup).
-behaviour(supervisor).

-export([start_link/0, start_context/1, stop_context/1, start_defaults/2, stop_defaults/0,
         init/1]).

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
        %% init/1 stopped: its reason, without the child spec beside it
        {error, {Reason, Child}} when element(1, Child) =:= child -> {error, Reason};
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

%% @doc Start N default contexts (permanent children); the ones running
%% are stopped first.
-spec start_defaults(pos_integer(), py_opts:mode()) -> {ok, [pid()]} | {error, term()}.
start_defaults(N, Mode) ->
    ok = stop_defaults(),
    start_defaults(1, N, Mode, []).

start_defaults(I, N, _Mode, Acc) when I > N ->
    {ok, lists:reverse(Acc)};
start_defaults(I, N, Mode, Acc) ->
    case supervisor:start_child(?MODULE, default_spec(I, Mode)) of
        {ok, Pid} -> start_defaults(I + 1, N, Mode, [Pid | Acc]);
        {error, Reason} -> ok = stop_defaults(), {error, Reason}
    end.

%% @doc Stop the default contexts.
-spec stop_defaults() -> ok.
stop_defaults() ->
    Ids = [Id || {{default, _} = Id, _, _, _} <- supervisor:which_children(?MODULE)],
    lists:foreach(fun(Id) ->
                          _ = supervisor:terminate_child(?MODULE, Id),
                          _ = supervisor:delete_child(?MODULE, Id)
                  end, Ids).

%% @private
-spec init([]) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init([]) ->
    Flags = #{strategy => one_for_one, intensity => 10, period => 10},
    %% The default contexts' mode (app env context_mode): what cannot start
    %% here stops the application with the reason (py_opts:mode/2).
    Mode = py_opts:context_mode(),
    case py_opts:mode(Mode, fun py_context:python_version/0) of
        ok -> ok;
        {error, Reason} -> exit(Reason)
    end,
    Defaults = [default_spec(I, Mode) || I <- lists:seq(1, py_opts:num_contexts())],
    {ok, {Flags, Defaults}}.

default_spec(I, Mode) ->
    #{id => {default, I}, start => {py_context, start_link, [#{default => I, mode => Mode}]},
      shutdown => 10000}.
