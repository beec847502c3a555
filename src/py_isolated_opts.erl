%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc The options of an isolated context, validated with their defaults,
%% and what they make of the child's command line and environment.
%%
%% Options (erlang_python 5.x's, plus `sandbox', `spin_us' and `reply_spin_us'):
%% `python' (the interpreter; default the one the NIF embeds), `rlimits'
%% (`#{as => Bytes, cpu => Seconds, nofile => N}'), `cgroup' (a cgroup v2
%% directory the child joins), `env' (`[{Name, Value}]' or a map),
%% `clear_env' (false), `hash_seed' (0..4294967295; default random),
%% `paths' (prepended to `sys.path'), `preload' (code run once per child;
%% its globals seed every process's namespace), `kill_after' (ms between
%% the interrupt of a timed-out request and SIGKILL; 1000), `restart'
%% (true), `max_restarts' (5) within `restart_period' (10000 ms),
%% `start_timeout' (10000 ms), `sandbox' (true: the child blocks process
%% creation as the VM does; false lifts it) and `spin_us' (500: how long
%% the child polls its channel before it sleeps), `reply_spin_us' (100: how
%% long a caller polls for its reply before it waits for a message; 0..10000),
%% and `zygote' (a
%% py_zygote: children are forked from it, ready in milliseconds; its own
%% `python', `env', `clear_env', `hash_seed' and `preload' apply). App env
%% `isolated' (a map of these) gives the defaults of default and pool
%% contexts.
-module(py_isolated_opts).

-export([validate/1, command/5, exit_reason/1]).
-export_type([opts/0]).

-type opts() :: #{python := binary(), rlimits := #{as | cpu | nofile => pos_integer()},
                  cgroup := binary() | undefined, env := [{string(), string() | false}],
                  clear_env := boolean(), hash_seed := non_neg_integer() | random,
                  paths := [binary()], preload := binary() | undefined,
                  kill_after := timeout(), restart := boolean(),
                  max_restarts := non_neg_integer(), restart_period := pos_integer(),
                  start_timeout := pos_integer(), sandbox := boolean(),
                  spin_us := non_neg_integer(), reply_spin_us := non_neg_integer(),
                  zygote := pid() | undefined}.

%% @doc The options with defaults, or `{error, Reason}' for a `cgroup' on a
%% system without cgroups v2; a bad value raises `error({badarg, {Key, Value}})'.
%% Keys of py_context:new/1 that are not isolated options (`mode', and the
%% pool bookkeeping) are ignored.
-spec validate(map()) -> {ok, opts()} | {error, {cgroup_unsupported, term()}}.
validate(Opts) when is_map(Opts) ->
    Env = application:get_env(erlang_python, isolated, #{}),
    is_map(Env) orelse erlang:error({badarg, {isolated, Env}}),
    Merged = maps:merge(Env, Opts),
    Valid = maps:fold(fun check/3, defaults(), maps:without([mode, default, pool], Merged)),
    case Valid of
        #{cgroup := undefined} -> {ok, Valid};
        #{cgroup := Dir} -> cgroup_ok(Dir, Valid)
    end;
validate(Opts) ->
    erlang:error({badarg, {opts, Opts}}).

%% @doc The executable, arguments and environment for open_port:
%% `python -u -m Module SocketPath' (Module `erlang._child' or
%% `erlang._zygote').
-spec command(opts(), binary(), string(), string(), string()) ->
          {string(), [string()], [{string(), string() | false}]}.
command(#{python := Python, env := UserEnv, clear_env := Clear, hash_seed := Seed,
          spin_us := Spin}, PythonDir, Module, Socket, Token) ->
    Ours = [{"PYTHONPATH", pythonpath(PythonDir, Clear, UserEnv)},
            {"PYTHONUNBUFFERED", "1"},
            {"ERLANG_PYTHON_TOKEN", Token},
            {"ERLANG_PYTHON_SPIN_US", integer_to_list(Spin)}]
        ++ [{"PYTHONHASHSEED", integer_to_list(Seed)} || is_integer(Seed)],
    Names = [N || {N, _} <- Ours ++ UserEnv],
    Cleared = case Clear of
                  true -> [{N, false} || N <- env_names(), not lists:member(N, Names)];
                  false -> []
              end,
    {unicode:characters_to_list(Python), ["-u", "-m", Module, Socket],
     Cleared ++ [KV || KV = {N, _} <- UserEnv, N =/= "PYTHONPATH"] ++ Ours}.

%% @doc The reason a child's exit status stands for: `{signal, N}' for a
%% status above 128 (the port reports 128 + N for a child killed by signal
%% N), else `{exit, Status}'.
-spec exit_reason(non_neg_integer()) -> {signal, pos_integer()} | {exit, non_neg_integer()}.
exit_reason(Status) when Status > 128, Status < 128 + 65 -> {signal, Status - 128};
exit_reason(Status) -> {exit, Status}.

%% Internal.

defaults() ->
    #{python => default_python(), rlimits => #{}, cgroup => undefined, env => [],
      clear_env => false, hash_seed => random, paths => [], preload => undefined,
      kill_after => 1000, restart => true, max_restarts => 5, restart_period => 10000,
      start_timeout => 10000, sandbox => true, spin_us => 500, reply_spin_us => 100,
      zygote => undefined}.

default_python() ->
    maps:get(python, py_opts:runtime()).

check(python, V, Acc) -> Acc#{python => bin(python, V)};
check(rlimits, V, Acc) when is_map(V) -> Acc#{rlimits => maps:map(fun rlimit/2, V)};
check(cgroup, V, Acc) -> Acc#{cgroup => bin(cgroup, V)};
check(env, V, Acc) when is_map(V) -> check(env, maps:to_list(V), Acc);
check(env, V, Acc) when is_list(V) -> Acc#{env => [env_pair(P) || P <- V]};
check(clear_env, V, Acc) when is_boolean(V) -> Acc#{clear_env => V};
check(hash_seed, V, Acc) when is_integer(V), V >= 0, V =< 4294967295 -> Acc#{hash_seed => V};
check(hash_seed, random, Acc) -> Acc#{hash_seed => random};
check(paths, V, Acc) when is_list(V) -> Acc#{paths => [bin(paths, P) || P <- V]};
check(preload, V, Acc) -> Acc#{preload => bin(preload, V)};
check(kill_after, infinity, Acc) -> Acc#{kill_after => infinity};
check(kill_after, V, Acc) when is_integer(V), V >= 0 -> Acc#{kill_after => V};
check(restart, V, Acc) when is_boolean(V) -> Acc#{restart => V};
check(max_restarts, V, Acc) when is_integer(V), V >= 0 -> Acc#{max_restarts => V};
check(restart_period, V, Acc) when is_integer(V), V > 0 -> Acc#{restart_period => V};
check(start_timeout, V, Acc) when is_integer(V), V > 0 -> Acc#{start_timeout => V};
check(sandbox, V, Acc) when is_boolean(V) -> Acc#{sandbox => V};
check(spin_us, V, Acc) when is_integer(V), V >= 0, V =< 100000 -> Acc#{spin_us => V};
check(reply_spin_us, V, Acc) when is_integer(V), V >= 0, V =< 10000 ->
    Acc#{reply_spin_us => V};
check(zygote, V, Acc) when is_pid(V) -> Acc#{zygote => V};
check(K, V, _) -> erlang:error({badarg, {K, V}}).

rlimit(K, V) when (K =:= as orelse K =:= cpu orelse K =:= nofile), is_integer(V), V > 0 -> V;
rlimit(K, V) -> erlang:error({badarg, {rlimits, {K, V}}}).

env_pair({K, V}) ->
    Name = str(env, K),
    (Name =/= "" andalso not lists:member($=, Name)) orelse erlang:error({badarg, {env, K}}),
    {Name, case V of false -> false; _ -> str(env, V) end};
env_pair(P) ->
    erlang:error({badarg, {env, P}}).

pythonpath(PythonDir, Clear, UserEnv) ->
    Ours = unicode:characters_to_list(PythonDir),
    Theirs = case lists:keyfind("PYTHONPATH", 1, UserEnv) of
                 {_, V} when is_list(V) -> V;
                 _ when Clear -> false;
                 _ -> os:getenv("PYTHONPATH")
             end,
    case Theirs of
        false -> Ours;
        "" -> Ours;
        _ -> Ours ++ ":" ++ Theirs
    end.

env_names() ->
    [Name || KV <- os:getenv(), [Name | _] <- [string:split(KV, "=")], Name =/= ""].

%% Joining a cgroup needs cgroups v2 (Linux, a cgroup2 file system).
cgroup_ok(Dir, Valid) ->
    case os:type() of
        {unix, linux} ->
            case filelib:is_regular("/sys/fs/cgroup/cgroup.controllers") of
                true -> {ok, Valid#{cgroup => Dir}};
                false -> {error, {cgroup_unsupported, no_cgroup2}}
            end;
        Os ->
            {error, {cgroup_unsupported, Os}}
    end.

bin(_, B) when is_binary(B) -> B;
bin(K, L) when is_list(L) ->
    case unicode:characters_to_binary(L) of
        B when is_binary(B) -> B;
        _ -> erlang:error({badarg, {K, L}})
    end;
bin(K, A) when is_atom(A), K =/= preload, K =/= python -> atom_to_binary(A);
bin(K, V) -> erlang:error({badarg, {K, V}}).

str(K, V) -> unicode:characters_to_list(bin(K, V)).
