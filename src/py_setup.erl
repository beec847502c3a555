%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc What every context applies: the application's registry of paths,
%% imports, preload code, the active venv, the logging level and format,
%% and whether tracing is on.
%%
%% The settings are one map in a `persistent_term' (read by every context
%% that starts), changed only through this server (one change at a time,
%% each with a new, increasing `version'). A change is then applied to the
%% running contexts by the process that asked for it, all contexts at once,
%% and every context applies the settings as it starts (py_context:init/1
%% calls started/2), so a context started after a change has it too.
%% Applying is `erlang._setup.apply(Settings)' run as an ordinary call on the
%% context (priv/python/erlang/_setup.py): idempotent, undoing what the
%% settings no longer list (a path, a venv), and ignoring settings older
%% than those already applied. Any kind of context that runs calls through
%% `py:call(Ctx, ...)' takes part: one in a child OS process needs nothing
%% else.
%%
%% py_import, py_preload, py_venv and py:configure_logging/1,
%% py:enable_tracing/0 are the public faces of this registry.
-module(py_setup).
-behaviour(gen_server).

-export([start_link/0, settings/0, change/1, started/2, apply_all/1, on_all/2,
         python_error/1]).
-export([init/1, handle_call/3, handle_cast/2]).
-export_type([settings/0]).

-include_lib("kernel/include/logger.hrl").

-type settings() :: #{version := integer(),
                      paths := [binary()],
                      imports := [{binary(), all | binary()}],
                      venv := undefined | {binary(), binary()},
                      preload := undefined | binary(),
                      log_level := 10 | 20 | 30 | 40 | 50,
                      log_format := undefined | binary(),
                      log_version := integer(),
                      tracing := boolean()}.

-define(KEY, {?MODULE, settings}).
%% How long applying settings may wait on one context (behind the calls
%% queued there).
-define(TIMEOUT, 60000).

%% API.

%% @doc Start the registry (registered as `py_setup'), from the app env
%% `paths' and `imports'.
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% @doc The current settings.
-spec settings() -> settings().
settings() ->
    case persistent_term:get(?KEY, undefined) of
        undefined -> defaults([], []);
        S -> S
    end.

%% @doc Change the settings with `Fun(Old) -> New' (one change at a time)
%% and apply them to the running contexts: `{Old, New, Results}', Results
%% as apply_all/1. `Fun' may return `{error, Reason}' to change nothing.
-spec change(fun((settings()) -> settings() | {error, term()})) ->
          {settings(), settings(), [{pid(), term()}]} | {error, term()}.
change(Fun) ->
    case gen_server:call(?MODULE, {change, Fun}) of
        {ok, Old, New} -> {Old, New, apply_all(New)};
        {error, _} = Error -> Error
    end.

%% @doc A context starts (called by it, in its own process, once it can
%% serve calls): apply the settings there with its own preload code.
%% Failures of the registry's imports and preload are logged; a failure
%% of the context's own preload is the context's start error.
-spec started(pid(), undefined | binary()) -> ok | {error, term()}.
started(Ctx, OwnPreload) ->
    Settings = settings(),
    case apply_one(Ctx, Settings, OwnPreload) of
        {ok, #{preload := Failed} = Failures} when OwnPreload =/= undefined, Failed =/= none ->
            log_failures(Ctx, Failures#{preload := none}),
            {error, {preload_failed, python_error(Failed)}};
        {ok, Failures} ->
            log_failures(Ctx, Failures),
            ok;
        {error, Reason} ->
            {error, {setup_failed, Reason}}
    end.

%% @doc Apply settings to every running context, all at once:
%% `[{Ctx, {ok, Failures} | {error, Reason}}]', Failures
%% `#{imports := [{Module, Func, Name, Message}], preload := none | {Name, Message}}'.
%% Contexts that stop meanwhile are left out.
-spec apply_all(settings()) -> [{pid(), term()}].
apply_all(Settings) ->
    on_all(fun(Ctx) -> apply_one(Ctx, Settings, undefined) end, ?TIMEOUT).

%% @doc Run `Fun(Ctx)' for every running context, each in a process of its
%% own, and collect `[{Ctx, Result}]'; a context that stops meanwhile
%% (`{error, closed}') is left out, and one that takes longer than
%% `Timeout' gives `{error, timeout}'.
-spec on_all(fun((pid()) -> term()), timeout()) -> [{pid(), term()}].
on_all(Fun, Timeout) ->
    Jobs = [{Ctx, spawn_monitor(fun() -> exit({done, Fun(Ctx)}) end)}
            || Ctx <- py_router:all()],
    Deadline = case Timeout of
                   infinity -> infinity;
                   _ -> erlang:monotonic_time(millisecond) + Timeout + 1000
               end,
    [{Ctx, R} || {Ctx, R} <- [collect(J, Deadline) || J <- Jobs], R =/= {error, closed}].

%% @doc A Python failure reported by `erlang._setup' (`(Name, Message)')
%% as the documented error reason `{Name, Message}', Message a string.
-spec python_error(term()) -> {atom(), string()} | term().
python_error({Name, Msg}) when is_atom(Name), is_binary(Msg) ->
    {Name, unicode:characters_to_list(Msg)};
python_error(Other) ->
    Other.

%% gen_server.

%% @private
-spec init([]) -> {ok, #{}}.
init([]) ->
    Paths = [py_request:name(path, P) || P <- env_list(paths)],
    Imports = [import_entry(I) || I <- env_list(imports)],
    persistent_term:put(?KEY, defaults(Paths, Imports)),
    {ok, #{}}.

%% @private
-spec handle_call(term(), gen_server:from(), map()) -> {reply, term(), map()}.
handle_call({change, Fun}, _From, State) ->
    Old = settings(),
    Reply = try Fun(Old) of
                {error, _} = Error ->
                    Error;
                New when is_map(New) ->
                    New1 = New#{version := version()},
                    persistent_term:put(?KEY, New1),
                    {ok, Old, New1}
            catch
                Class:Reason:Stack -> {error, {Class, Reason, Stack}}
            end,
    {reply, Reply, State};
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_call}, State}.

%% @private
-spec handle_cast(term(), map()) -> {noreply, map()}.
handle_cast(_Msg, State) ->
    {noreply, State}.

%% Internal.

defaults(Paths, Imports) ->
    #{version => version(), paths => Paths, imports => Imports, venv => undefined,
      preload => undefined, log_level => 30, log_format => undefined,
      log_version => version(), tracing => false}.

%% Increasing across restarts of the application in one VM (the interpreter
%% and what was applied to it outlive a restart).
version() ->
    erlang:unique_integer([monotonic, positive]).

apply_one(Ctx, Settings, OwnPreload) ->
    Args = case OwnPreload of
               undefined -> [Settings];
               _ -> [Settings, OwnPreload]
           end,
    case py:call(Ctx, 'erlang._setup', apply, Args, #{timeout => ?TIMEOUT}) of
        {ok, #{imports := Imports, preload := Preload}} ->
            {ok, #{imports => Imports, preload => none_if_undefined(Preload)}};
        {ok, Other} ->
            {error, {bad_reply, Other}};
        {error, _} = Error ->
            Error
    end.

none_if_undefined(none) -> none;
none_if_undefined(undefined) -> none;
none_if_undefined(V) -> V.

collect({Ctx, {Pid, Mon}}, Deadline) ->
    Left = case Deadline of
               infinity -> infinity;
               _ -> max(0, Deadline - erlang:monotonic_time(millisecond))
           end,
    receive
        {'DOWN', Mon, process, Pid, {done, R}} -> {Ctx, R};
        {'DOWN', Mon, process, Pid, Reason} -> {Ctx, {error, {crashed, Reason}}}
    after Left ->
        exit(Pid, kill),
        receive {'DOWN', Mon, process, Pid, _} -> ok end,
        {Ctx, {error, timeout}}
    end.

log_failures(Ctx, #{imports := Imports, preload := Preload}) ->
    [?LOG_WARNING("erlang_python: context ~p cannot import ~ts (~ts): ~ts: ~ts",
                  [Ctx, M, F, N, Msg], #{domain => [python]})
     || {M, F, N, Msg} <- Imports],
    case Preload of
        none -> ok;
        {Name, Msg} -> ?LOG_ERROR("erlang_python: the preload code failed on context ~p: ~ts: ~ts",
                                  [Ctx, Name, Msg], #{domain => [python]})
    end.

env_list(Key) ->
    case application:get_env(erlang_python, Key, []) of
        L when is_list(L) -> L;
        V -> erlang:error({badarg, {Key, V}})
    end.

%% App env `imports': `{Module, Func}' as in erlang_python 4.x, or a bare
%% module name (4.x crashes on one).
import_entry({M, F}) -> {py_request:name(module, M), func(F)};
import_entry(M) -> {py_request:name(module, M), all}.

func(all) -> all;
func(F) -> py_request:name(function, F).

