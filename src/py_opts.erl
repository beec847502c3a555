%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc Options: the application environment and per-context option maps,
%% validated with typed defaults. Policy lives here, not in C.
-module(py_opts).

-export([runtime/0, num_contexts/0, context/1, finalize_on_stop/0, sandbox/0,
         context_mode/0, mode/2, max_concurrent/0, start_contexts/1]).
-export_type([context_opts/0, mode/0]).

-type context_opts() :: #{spin_us => non_neg_integer(),
                          reply_spin_us => 0..100,
                          mode => mode()}.
-type mode() :: worker | owngil | isolated.

%% @doc The runtime's start options, from the application environment.
-spec runtime() -> #{python := binary(), python_path := [binary()],
                     max_depth := pos_integer(), atom_cap := non_neg_integer(),
                     alloc_cache := non_neg_integer()}.
runtime() ->
    Priv = priv_dir(),
    Exe = case env(python, default) of
              default -> default_python(Priv);
              Path -> to_bin(python, Path)
          end,
    Extra = [to_bin(python_path, P) || P <- check_list(python_path, env(python_path, []))],
    #{python => Exe,
      python_path => [to_bin(priv, filename:join(Priv, "python")) | Extra],
      max_depth => check_pos(max_depth, env(max_depth, 1000)),
      atom_cap => check_non_neg(atom_cap, env(atom_cap, 10000)),
      alloc_cache => check_non_neg(alloc_cache, env(alloc_cache, 64 * 1024 * 1024))}.

%% @doc Whether stopping the application finalizes the interpreter.
-spec finalize_on_stop() -> boolean().
finalize_on_stop() ->
    case env(finalize_on_stop, false) of
        B when is_boolean(B) -> B;
        V -> erlang:error({badarg, {finalize_on_stop, V}})
    end.

%% @doc The sandbox: app env `sandbox' (`default' | `strict') and
%% `sandbox_log_limit' (denials logged per second; the rest are counted).
-spec sandbox() -> #{policy := default | strict, log_limit := non_neg_integer()}.
sandbox() ->
    Policy = case env(sandbox, default) of
                 P when P =:= default; P =:= strict -> P;
                 V -> erlang:error({badarg, {sandbox, V}})
             end,
    #{policy => Policy,
      log_limit => check_non_neg(sandbox_log_limit, env(sandbox_log_limit, 10))}.

%% @doc How many contexts the application starts.
-spec num_contexts() -> pos_integer().
num_contexts() ->
    case env(num_contexts, default) of
        default -> erlang:system_info(schedulers);
        N -> check_pos(num_contexts, N)
    end.

%% @doc The default contexts' mode: app env `context_mode' (`worker',
%% the default, `owngil' or `isolated'); anything else raises `error({badarg, ...})'.
-spec context_mode() -> mode().
context_mode() ->
    case env(context_mode, worker) of
        M when M =:= worker; M =:= owngil; M =:= isolated -> M;
        V -> erlang:error({badarg, {context_mode, V}})
    end.

%% @doc Whether contexts of a mode can be made here: `ok', or the reason
%% they cannot. `Version' gives the embedded Python's version
%% (`{ok, {Major, Minor, Micro}}', py_context:python_version/0), asked only
%% for `owngil'.
%% `worker' contexts share the interpreter; `owngil' contexts have a
%% sub-interpreter with its own GIL (Python >= 3.12); `isolated' contexts
%% run it in a child OS process (py_isolated).
-spec mode(term(), fun(() -> {ok, {integer(), integer(), integer()}})) ->
          ok | {error, {owngil_unsupported, term()} | {invalid_mode, term()}}.
mode(worker, _Version) ->
    ok;
mode(owngil, Version) ->
    case Version() of
        {ok, {Major, Minor, Micro} = V} when V < {3, 12, 0} ->
            {error, {owngil_unsupported,
                     {python_version, lists:flatten(io_lib:format("~b.~b.~b", [Major, Minor, Micro]))}}};
        {ok, _} ->
            ok
    end;
mode(isolated, _Version) ->
    ok;
mode(Mode, _Version) ->
    {error, {invalid_mode, Mode}}.

%% @doc Calls of py:call/3-5 running at once: app env `max_concurrent'
%% (a positive integer; default `infinity', no limit). 4.x limits to
%% `2 * schedulers + 1' by default; here a waiting call polls, and with 64
%% callers of math.sqrt on two contexts that default cut throughput from
%% ~570k to ~140k calls/s, so a limit is something to ask for.
-spec max_concurrent() -> pos_integer() | infinity.
max_concurrent() ->
    case env(max_concurrent, infinity) of
        infinity -> infinity;
        N -> check_pos(max_concurrent, N)
    end.

%% @doc Options of py:start_contexts/1 with defaults from the environment:
%% `contexts' (count) and `mode'.
-spec start_contexts(map()) -> #{contexts := pos_integer(), mode := term()}.
start_contexts(Opts) when is_map(Opts) ->
    maps:fold(fun(contexts, V, Acc) -> Acc#{contexts => check_pos(contexts, V)};
                 (mode, V, Acc) -> Acc#{mode => V};
                 (K, V, _) -> erlang:error({badarg, {K, V}})
              end, #{contexts => num_contexts(), mode => context_mode()}, Opts);
start_contexts(Opts) ->
    erlang:error({badarg, {opts, Opts}}).

%% @doc A context's options with defaults filled in; bad options raise
%% `error({badarg, {Key, Value}})'.
-spec context(map()) -> #{spin_us := non_neg_integer(), reply_spin_us := 0..100,
                          mode := mode()}.
context(Opts) when is_map(Opts) ->
    Defaults = #{spin_us => check_non_neg(spin_us, env(spin_us, 50)),
                 reply_spin_us => reply_spin(env(reply_spin_us, default)),
                 mode => worker},
    maps:fold(fun(spin_us, V, Acc) -> Acc#{spin_us => check_non_neg(spin_us, V)};
                 (reply_spin_us, V, Acc) -> Acc#{reply_spin_us => reply_spin(V)};
                 (mode, M, Acc) when M =:= worker; M =:= owngil -> Acc#{mode => M};
                 (K, V, _) -> erlang:error({badarg, {K, V}})
              end, Defaults, Opts);
context(Opts) ->
    erlang:error({badarg, {opts, Opts}}).

%% Internal.

%% How long a caller spins for its reply before it waits in `receive'
%% (py_context): 10 us by default, none with a single processor, where the
%% spin would take the very processor the context thread needs.
reply_spin(default) ->
    case erlang:system_info(logical_processors_available) of
        N when is_integer(N), N < 2 -> 0;
        _ -> 10
    end;
reply_spin(V) when is_integer(V), V >= 0, V =< 100 -> V;
reply_spin(V) -> erlang:error({badarg, {reply_spin_us, V}}).

env(Key, Default) ->
    application:get_env(erlang_python, Key, Default).

priv_dir() ->
    case code:priv_dir(erlang_python) of
        {error, bad_name} -> erlang:error({badarg, no_priv_dir});
        Dir -> Dir
    end.

%% The Python the NIF was built for (priv/python_executable), read once per
%% priv directory: every isolated start asks (a read took 55 us of its 75).
default_python(Priv) ->
    case persistent_term:get({?MODULE, python_executable, Priv}, undefined) of
        undefined ->
            case file:read_file(filename:join(Priv, "python_executable")) of
                {ok, Bin} ->
                    Exe = string:trim(Bin),
                    persistent_term:put({?MODULE, python_executable, Priv}, Exe),
                    Exe;
                {error, _} ->
                    case os:find_executable("python3") of
                        false -> <<"python3">>;
                        Path -> unicode:characters_to_binary(Path)
                    end
            end;
        Exe ->
            Exe
    end.

to_bin(_, B) when is_binary(B) -> B;
to_bin(K, L) when is_list(L) ->
    case unicode:characters_to_binary(L) of
        B when is_binary(B) -> B;
        _ -> erlang:error({badarg, {K, L}})
    end;
to_bin(K, V) -> erlang:error({badarg, {K, V}}).

check_list(_, L) when is_list(L) -> L;
check_list(K, V) -> erlang:error({badarg, {K, V}}).

check_pos(_, N) when is_integer(N), N > 0 -> N;
check_pos(K, V) -> erlang:error({badarg, {K, V}}).

check_non_neg(_, N) when is_integer(N), N >= 0 -> N;
check_non_neg(K, V) -> erlang:error({badarg, {K, V}}).
