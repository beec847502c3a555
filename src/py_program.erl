%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc Programs that Python runs (`erlang.subprocess', asyncio subprocesses
%% on ErlangEventLoop), each an Erlang port owned by a process of this module.
%%
%% The port runs `priv/py_program_exec', a small wrapper that starts the
%% program with pipes of its own and relays its stdout, its stderr (kept
%% apart), its exit status and the signals sent to it as frames
%% (c_src/program/py_program_exec.c). No fork happens in the VM: the port is
%% spawned by the VM's child-setup process, as every port is.
%%
%% Python drives a program through the built-in function
%% `erlang_python.program' (py_callback), `python/1' here: `start' checks the
%% policy and starts a program process, the other operations are calls to
%% it. The process buffers the output until Python reads it, kills the
%% program when its owner (the Erlang process whose request started it)
%% dies, and ends when the program has ended and Python released it (or its
%% owner died).
%%
%% Policy (application environment `programs'): `allow' (the default),
%% `deny', or a list of executables (names looked up in PATH, or absolute
%% paths) that may be run. It is checked here, in Erlang, where Python
%% cannot change it.
-module(py_program).

-export([python/1, policy/0, check_policy/2]).
%% The program process.
-export([init/3]).

-define(EXEC, "py_program_exec").

-type mode() :: inherit | pipe | devnull | stdout.
-type policy() :: allow | deny | [binary()].

-record(st, {port :: port(),
             owner :: reference() | undefined,
             os_pid = undefined :: integer() | undefined,
             out = [] :: iodata(), err = [] :: iodata(),
             out_eof = false :: boolean(), err_eof = false :: boolean(),
             status = undefined :: integer() | undefined,
             status_told = false :: boolean(),
             ended = false :: boolean(),
             released = false :: boolean(),
             waiting = [] :: [{term(), reference() | undefined}]}).

%% API.

%% @doc The built-in function behind `erlang.subprocess': `[Op | Args]'
%% from Python (see priv/python/erlang/subprocess.py).
-spec python(list()) -> term().
python([<<"start">>, Spec]) when is_map(Spec) ->
    start(Spec);
python([<<"policy">>]) ->
    #{programs => policy(), redirect_subprocess => redirect()};
python([Op, Pid | Args]) when is_binary(Op), is_pid(Pid) ->
    request(Pid, {binary_to_existing_atom(Op, utf8), Args});
python(Args) ->
    erlang:error({badarg, Args}).

%% @doc The policy for programs: app env `programs' (`allow' | `deny' | a
%% list of executables).
-spec policy() -> policy().
policy() ->
    case application:get_env(erlang_python, programs, allow) of
        P when P =:= allow; P =:= deny -> P;
        L when is_list(L) -> [iolist_to_binary(E) || E <- L];
        V -> erlang:error({badarg, {programs, V}})
    end.

%% @doc Whether `Executable' (as given, and as found along `Path') may run
%% under `Policy'.
-spec check_policy(policy(), binary()) -> ok | {error, binary()}.
check_policy(allow, _) ->
    ok;
check_policy(deny, _) ->
    {error, <<"programs are denied ({programs, deny})">>};
check_policy(List, Exe) ->
    Found = case os:find_executable(binary_to_list(Exe)) of
                false -> Exe;
                F -> list_to_binary(F)
            end,
    case lists:member(Exe, List) orelse lists:member(Found, List)
        orelse lists:member(filename:basename(Found), List) of
        true -> ok;
        false -> {error, <<"not in the application environment programs">>}
    end.

%% Internal.

redirect() ->
    application:get_env(erlang_python, redirect_subprocess, false) =:= true.

start(#{<<"executable">> := Exe} = Spec) ->
    case check_policy(policy(), Exe) of
        {error, Why} ->
            {denied, Why};
        ok ->
            Owner = maps:get(<<"owner">>, Spec, none),
            Parent = self(),
            Ref = make_ref(),
            Pid = proc_lib:spawn(?MODULE, init, [Parent, Ref, {Spec, Owner}]),
            Mon = monitor(process, Pid),
            receive
                {Ref, Reply} -> demonitor(Mon, [flush]), Reply;
                {'DOWN', Mon, process, Pid, Reason} -> {failed, 0, Reason}
            end
    end.

request(Pid, Req) ->
    Mon = monitor(process, Pid),
    Pid ! {py_program, self(), Mon, Req},
    receive
        {Mon, Reply} -> demonitor(Mon, [flush]), Reply;
        {'DOWN', Mon, process, Pid, _} -> gone
    end.

exec_path() ->
    Priv = case code:priv_dir(erlang_python) of
               {error, _} -> filename:join(filename:dirname(filename:dirname(code:which(?MODULE))),
                                           "priv");
               D -> D
           end,
    filename:join(Priv, ?EXEC).

%% The program process.

%% @private
-spec init(pid(), reference(), {map(), term()}) -> no_return().
init(Parent, Ref, {Spec, Owner}) ->
    Port = open_port({spawn_executable, exec_path()},
                     [{packet, 4}, binary, nouse_stdio, exit_status]),
    true = port_command(Port, setup(Spec)),
    receive
        {Port, {data, <<$P, OsPid:32>>}} ->
            OwnerMon = case Owner of
                           P when is_pid(P) -> monitor(process, P);
                           _ -> undefined
                       end,
            Parent ! {Ref, {started, self(), OsPid}},
            loop(#st{port = Port, owner = OwnerMon, os_pid = OsPid});
        {Port, {data, <<$F, Errno:32, Stage>>}} ->
            Parent ! {Ref, {failed, Errno, <<Stage>>}},
            exit(normal);
        {Port, {exit_status, S}} ->
            Parent ! {Ref, {failed, 0, {wrapper_exit, S}}},
            exit(normal)
    end.

setup(Spec) ->
    Mode = fun(K) -> mode_byte(binary_to_existing_atom(maps:get(K, Spec, <<"inherit">>), utf8)) end,
    Args = maps:get(<<"args">>, Spec),
    Env = case maps:get(<<"env">>, Spec, none) of
              none -> <<16#ffffffff:32>>;
              Pairs -> [<<(length(Pairs)):32>> | [str([K, $=, V]) || [K, V] <- Pairs]]
          end,
    [$S, Mode(<<"stdin">>), Mode(<<"stdout">>), Mode(<<"stderr">>),
     str(maps:get(<<"executable">>, Spec)), str(maps:get(<<"cwd">>, Spec, <<>>)),
     <<(length(Args)):32>>, [str(A) || A <- Args], Env].

-spec mode_byte(mode()) -> 0..3.
mode_byte(inherit) -> 0;
mode_byte(pipe) -> 1;
mode_byte(devnull) -> 2;
mode_byte(stdout) -> 3.

str(S) ->
    B = iolist_to_binary(S),
    [<<(byte_size(B)):32>>, B].

loop(#st{ended = true, released = true}) ->
    exit(normal);
loop(#st{port = Port} = St) ->
    receive
        {Port, {data, <<$O, D/binary>>}} -> loop(serve(St#st{out = [St#st.out, D]}));
        {Port, {data, <<$R, D/binary>>}} -> loop(serve(St#st{err = [St#st.err, D]}));
        {Port, {data, <<$X, S:32/signed>>}} -> loop(serve(St#st{status = S}));
        {Port, {data, <<$E>>}} -> loop(serve(ended(St)));
        {Port, {exit_status, _}} -> loop(serve(ended(St)));
        py_program_release ->
            loop(St#st{released = true});
        {py_program, From, Mon, {release, []}} ->
            From ! {Mon, ok},
            loop(St#st{released = true});
        {py_program, From, Mon, Req} ->
            loop(serve(handle(Req, {From, Mon}, St)));
        {timeout, TRef, {wait_timeout, Key}} ->
            loop(expire(TRef, Key, St));
        {'DOWN', Mon, process, _, _} when Mon =:= St#st.owner ->
            catch port_close(Port),
            exit(normal)
    end.

ended(St) ->
    St#st{ended = true, out_eof = true, err_eof = true,
          status = case St#st.status of undefined -> -1; S -> S end}.

%% A request answers at once, or waits (with an optional timer) until the
%% program's state lets `answer/2' give it.
handle({write, [Data]}, From, #st{port = Port} = St) ->
    _ = catch port_command(Port, [$I, Data]),
    reply(From, ok),
    St;
handle({close_stdin, []}, From, #st{port = Port} = St) ->
    _ = catch port_command(Port, <<$C>>),
    reply(From, ok),
    St;
handle({signal, [Sig]}, From, #st{port = Port, ended = Ended} = St) ->
    _ = Ended orelse (catch port_command(Port, <<$K, Sig:32>>)),
    reply(From, ok),
    St;
handle({communicate, [Input, Timeout]}, From, #st{port = Port} = St) ->
    case Input of
        none -> ok;
        _ -> _ = catch port_command(Port, [[$I, Input] || Input =/= <<>>]),
             _ = catch port_command(Port, <<$C>>)
    end,
    wait_for({communicate}, From, Timeout, St);
handle({Op, Args}, From, St) ->
    Timeout = case Args of [_, T] -> T; [T] -> T; [] -> 0 end,
    wait_for(list_to_tuple([Op | Args]), From, Timeout, St).

wait_for(Req, From, Timeout, #st{waiting = W} = St) ->
    TRef = case Timeout of
               infinity -> undefined;
               Ms when is_integer(Ms), Ms >= 0 ->
                   erlang:start_timer(Ms, self(), {wait_timeout, From})
           end,
    St#st{waiting = W ++ [{Req, From, TRef}]}.

expire(TRef, Key, #st{waiting = W} = St) ->
    case lists:keytake(Key, 2, W) of
        {value, {Req, From, TRef}, Rest} ->
            reply(From, timed_out(Req, St)),
            St#st{waiting = Rest};
        _ ->
            St
    end.

timed_out({communicate}, St) ->
    {timeout, bytes(St#st.out), bytes(St#st.err)};
timed_out(_, _) ->
    timeout.

%% Answer every waiting request that can be answered now, in order.
serve(#st{waiting = W} = St) ->
    {St1, Left} = lists:foldl(
                    fun({Req, From, TRef} = Waiter, {S, Acc}) ->
                            case answer(Req, S) of
                                {Reply, S1} ->
                                    _ = TRef =:= undefined orelse erlang:cancel_timer(TRef),
                                    reply(From, Reply),
                                    {S1, Acc};
                                wait ->
                                    {S, [Waiter | Acc]}
                            end
                    end, {St#st{waiting = []}, []}, W),
    St1#st{waiting = lists:reverse(Left) ++ St1#st.waiting}.

answer({poll}, #st{status = S} = St) ->
    {case S of undefined -> none; _ -> S end, St};
answer({wait, _}, #st{status = undefined}) ->
    wait;
answer({wait, _}, #st{status = S} = St) ->
    {S, St};
answer({communicate}, #st{ended = false}) ->
    wait;
answer({communicate}, #st{out = O, err = E, status = S} = St) ->
    {{ok, bytes(O), bytes(E), S}, St#st{out = [], err = []}};
answer({read, Which, _}, St) ->
    read(Which, St);
answer({next, _}, St) ->
    next(St).

read(<<"stdout">>, #st{out = O, out_eof = Eof} = St) ->
    case iolist_size(O) of
        0 when Eof -> {eof, St};
        0 -> wait;
        _ -> {{data, bytes(O)}, St#st{out = []}}
    end;
read(<<"stderr">>, #st{err = E, err_eof = Eof} = St) ->
    case iolist_size(E) of
        0 when Eof -> {eof, St};
        0 -> wait;
        _ -> {{data, bytes(E)}, St#st{err = []}}
    end.

%% The next event for an asyncio transport, in the order they happened
%% closely enough: output first, then its end, then the exit.
next(#st{out = O} = St) when O =/= [] ->
    case iolist_to_binary(O) of
        <<>> -> next(St#st{out = []});
        B -> {{stdout, {bytes, B}}, St#st{out = []}}
    end;
next(#st{err = E} = St) when E =/= [] ->
    case iolist_to_binary(E) of
        <<>> -> next(St#st{err = []});
        B -> {{stderr, {bytes, B}}, St#st{err = []}}
    end;
next(#st{status = S, status_told = false} = St) when S =/= undefined ->
    {{exit, S}, St#st{status_told = true}};
next(#st{ended = true} = St) ->
    {done, St};
next(_) ->
    wait.

%% Output goes to Python as bytes, UTF-8 or not.
bytes(IoData) ->
    {bytes, iolist_to_binary(IoData)}.

reply({Pid, Mon}, Reply) ->
    Pid ! {Mon, Reply},
    ok.
