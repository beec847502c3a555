%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc A zygote: a prepared Python process (its `preload' run, numpy
%% imported, say) from which isolated contexts' children are forked, ready
%% in milliseconds instead of a cold start: fresh children on demand, for
%% one job per child (what erlang_python 5.x plans as "sessions").
%%
%% ```
%% {ok, Z} = py_zygote:start(#{preload => <<"import json">>}),
%% {ok, Ctx} = py_context:new(#{mode => isolated, zygote => Z}),
%% {ok, <<"[1]">>} = py:eval(Ctx, <<"json.dumps([1])">>),
%% ok = py_context:stop(Ctx),
%% {ok, 2} = py_zygote:run(Z, fun(C) -> py:eval(C, <<"1 + 1">>) end),
%% ok = py_zygote:stop(Z).
%% '''
%%
%% The zygote (priv/python/erlang/_zygote.py) runs no requests; it forks on
%% request (FORK), tells the child's pid (FORKED) and reaps its children,
%% telling the context process of each exit (EXITED ->
%% `{py_zygote_exit, Zygote, OsPid, Reason}'). Its children's stdout and
%% stderr are its own, logged with its OS pid; its children die with it.
%% Options: those of an isolated context that shape the process (`python',
%% `env', `clear_env', `hash_seed', `paths', `preload', `start_timeout');
%% each child's `rlimits', `cgroup', `sandbox' and `paths' are the
%% context's.
-module(py_zygote).
-behaviour(gen_server).

-export([start/1, stop/1, fork/4, run/2, run/3]).
-export([start_link/1, init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-include_lib("kernel/include/logger.hrl").

-define(FORK, 1).
-define(FORKED, 1).
-define(EXITED, 2).
-define(SIGKILL, 9).

%% API.

%% @doc Start a zygote (a temporary child of py_context_sup).
-spec start(map()) -> {ok, pid()} | {error, term()}.
start(Opts) when is_map(Opts) ->
    {ok, _} = py_isolated_opts:validate(maps:with([python, env, clear_env, hash_seed, paths,
                                                   preload, start_timeout], Opts)),
    Spec = #{id => make_ref(), start => {?MODULE, start_link, [Opts]},
             restart => temporary, shutdown => 5000},
    case supervisor:start_child(py_context_sup, Spec) of
        {ok, Pid} -> {ok, Pid};
        {error, {Reason, Child}} when element(1, Child) =:= child -> {error, Reason};
        {error, _} = Error -> Error
    end;
start(Opts) ->
    erlang:error({badarg, {opts, Opts}}).

%% @doc Stop a zygote; the children forked from it die with it.
-spec stop(pid()) -> ok | {error, not_found}.
stop(Z) ->
    py_context_sup:stop_context(Z).

%% @doc Fork a child that connects to Socket with Token (py_isolated_launch);
%% the caller is told of its exit as `{py_zygote_exit, Z, OsPid, Reason}'.
-spec fork(pid(), string(), string(), non_neg_integer()) ->
          {ok, pos_integer()} | {error, term()}.
fork(Z, Socket, Token, SpinUs) ->
    try gen_server:call(Z, {fork, self(), Socket, Token, SpinUs})
    catch exit:{Why, _} -> {error, {zygote, Why}}
    end.

%% @doc Run Fun(Ctx) on a fresh isolated context forked from the zygote,
%% then stop the context: one job, one child.
-spec run(pid(), fun((pid()) -> T)) -> T | {error, term()}.
run(Z, Fun) ->
    run(Z, Fun, #{}).

%% @doc run/2 with the context's options (py_context:new/1).
-spec run(pid(), fun((pid()) -> T), map()) -> T | {error, term()}.
run(Z, Fun, Opts) when is_function(Fun, 1), is_map(Opts) ->
    case py_context:new(Opts#{mode => isolated, zygote => Z, restart => false}) of
        {ok, Ctx} ->
            try Fun(Ctx)
            after _ = py_context:stop(Ctx)
            end;
        {error, _} = Error ->
            Error
    end.

%% gen_server.

%% @private
-spec start_link(map()) -> {ok, pid()} | {error, term()}.
start_link(Opts) ->
    gen_server:start_link(?MODULE, Opts, []).

%% @private
-spec init(map()) -> {ok, map()} | {stop, term()}.
init(Opts0) ->
    process_flag(trap_exit, true),
    {ok, Opts} = py_isolated_opts:validate(maps:with([python, env, clear_env, hash_seed,
                                                      paths, preload, start_timeout], Opts0)),
    #{paths := Paths, preload := Preload, start_timeout := Timeout} = Opts,
    Config = #{paths => Paths, preload => case Preload of undefined -> none; _ -> Preload end},
    case py_isolated_launch:launch({port, "erlang._zygote"}, Opts, Config, Timeout) of
        {ok, #{port := Port, os_pid := OsPid, sock := Sock, output := Out}} ->
            ok = inet:setopts(Sock, [{active, true}]),
            St = #{port => Port, os_pid => OsPid, sock => Sock, seq => 1, forks => #{},
                   children => #{}, output => <<>>},
            {ok, output(Out, St)};
        {error, Reason} ->
            {stop, Reason}
    end.

%% @private
-spec handle_call(term(), gen_server:from(), map()) -> {noreply, map()} | {reply, term(), map()}.
handle_call({fork, Owner, Socket, Token, Spin}, From, St = #{sock := Sock, seq := Seq,
                                                             forks := Forks}) ->
    Body = term_to_binary({list_to_binary(Socket), list_to_binary(Token), Spin}),
    ok = gen_tcp:send(Sock, [<<?FORK, Seq:64, 0:64>> | Body]),
    {noreply, St#{seq := Seq + 1, forks := Forks#{Seq => {From, Owner}}}};
handle_call(_Request, _From, St) ->
    {reply, {error, unknown_call}, St}.

%% @private
-spec handle_cast(term(), map()) -> {noreply, map()}.
handle_cast(_Msg, St) ->
    {noreply, St}.

%% @private
-spec handle_info(term(), map()) -> {noreply, map()} | {stop, term(), map()}.
handle_info({tcp, Sock, <<?FORKED, Seq:64, OsPid:64>>}, St = #{sock := Sock, forks := Forks,
                                                                children := Children}) ->
    {{From, Owner}, Rest} = maps:take(Seq, Forks),
    gen_server:reply(From, {ok, OsPid}),
    {noreply, St#{forks := Rest, children := Children#{OsPid => Owner}}};
handle_info({tcp, Sock, <<?EXITED, OsPid:64, _:64, Body/binary>>},
            St = #{sock := Sock, children := Children}) ->
    case maps:take(OsPid, Children) of
        {Owner, Rest} ->
            Owner ! {py_zygote_exit, self(), OsPid, binary_to_term(Body, [safe])},
            {noreply, St#{children := Rest}};
        error ->
            {noreply, St}
    end;
handle_info({Port, {data, Data}}, St = #{port := Port}) ->
    {noreply, output(Data, St)};
handle_info({Port, {exit_status, Status}}, St = #{port := Port}) ->
    {stop, {zygote_exited, py_isolated_opts:exit_reason(Status)}, St};
handle_info({tcp_closed, Sock}, St = #{sock := Sock}) ->
    {noreply, St};
handle_info(_Msg, St) ->
    {noreply, St}.

%% @private
-spec terminate(term(), map()) -> ok.
terminate(_Reason, #{sock := Sock, os_pid := OsPid, port := Port}) ->
    _ = gen_tcp:close(Sock),
    _ = py_nif:os_signal(OsPid, ?SIGKILL),
    _ = catch port_close(Port),
    ok.

%% Internal.

output(Data, St = #{output := Out}) ->
    lines(St#{output := <<Out/binary, Data/binary>>}).

lines(St = #{output := Out, os_pid := OsPid}) ->
    case binary:split(Out, <<"\n">>) of
        [Line, Rest] ->
            ?LOG_NOTICE("[python zygote ~p] ~ts", [OsPid, Line],
                        #{domain => [erlang_python, isolated], zygote => self(),
                          os_pid => OsPid, python_output => Line}),
            lines(St#{output := Rest});
        [_] ->
            St
    end.
