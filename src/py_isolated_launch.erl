%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc Starting a Python process for an isolated context or a zygote, up to
%% the moment it is ready: a Unix socket in a private directory (0700), the
%% process (open_port, no shell; or a fork of a zygote, py_zygote), its
%% connection proven by a one-time token, HELLO (what it is), CONFIG (what
%% it must set up before any user code), then READY or STARTUP_ERROR. An
%% isolated context's child also connects a second, fast socket (a `socket'
%% module one, at the path with `.fast' appended; its first frame the
%% token) before READY: see py_isolated_caller.
%%
%% Runs in the calling process (py_isolated or py_zygote), which owns the
%% port and the socket afterwards. A process that dies before it connects
%% gives `{child_exited_at_start, Reason, Output}', one whose set-up fails
%% `{startup_error, [{What, Detail}], Output}'.
-module(py_isolated_launch).

-export([launch/4, decode/1]).

-include_lib("kernel/include/file.hrl").
-export_type([launched/0]).

-define(HELLO, 5).
-define(READY, 6).
-define(STARTUP_ERROR, 8).
-define(FAST_HELLO, 10).
-define(CONFIG, 8).
-define(SIGKILL, 9).

%% What runs: `port', `os_pid' (the process), `sock' (the connection, in
%% passive mode), `fast' (the fast socket; `undefined' for a zygote),
%% `info' (from its HELLO) and `output' (what it printed).
-type launched() :: #{port := port() | undefined, os_pid := pos_integer(),
                      sock := gen_tcp:socket(), fast := socket:socket() | undefined,
                      info := map(), output := binary()}.

%% @doc Start `python -u -m Module Socket' with the options' command and
%% environment (`{port, Module}'), or fork one from a zygote (`{zygote,
%% Zygote}'), and send it Config; `{ok, Launched}' once it is ready.
%% `{port, "erlang._zygote"}' starts a zygote, which has no fast socket.
-spec launch({port, string()} | {zygote, pid()}, py_isolated_opts:opts(), map(),
             pos_integer()) -> {ok, launched()} | {error, term()}.
launch(How, Opts, Config, Timeout) ->
    Deadline = erlang:monotonic_time(millisecond) + Timeout,
    Path = socket_path(),
    FastPath = Path ++ ".fast",
    _ = [file:delete(P) || P <- [Path, FastPath]],
    case {gen_tcp:listen(0, [{ifaddr, {local, Path}}, binary, {packet, 4}, {active, false},
                             {backlog, 1}]),
          fast_listen(How, FastPath)} of
        {{ok, Listen}, {ok, FastListen}} ->
            Token = binary_to_list(binary:encode_hex(rand:bytes(16))),
            case spawn_process(How, Opts, Path, Token) of
                {ok, L} ->
                    %% connect/6 closes each listener (and deletes its path)
                    %% as soon as its connection is accepted, while the
                    %% child works: not after READY, on the way to the
                    %% first request.
                    connect({Listen, Path}, {FastListen, FastPath}, Token, Config, Deadline, L);
                {error, _} = E ->
                    _ = unlisten({Listen, Path}),
                    _ = unlisten({FastListen, FastPath}),
                    E
            end;
        {Listened, FastListened} ->
            _ = [close_listener(L) || L <- [Listened, FastListened]],
            {error, {child_start_failed, {listen, {Listened, FastListened}}}}
    end.

%% @doc A term from a Python process: binary_to_term, new atoms made
%% within the cap on atoms made from Python (app env atom_cap).
-spec decode(binary()) -> term().
decode(Bin) ->
    try binary_to_term(Bin, [safe])
    catch error:badarg -> decode_new_atoms(Bin)
    end.

%% Internal.

spawn_process({port, Module}, Opts, Path, Token) ->
    Priv = code:priv_dir(erlang_python),
    PyDir = unicode:characters_to_binary(filename:join(Priv, "python")),
    {Exe, Args, Env} = py_isolated_opts:command(Opts, PyDir,
                                                Module, Path, Token),
    %% priv/py_child_exec sets PR_SET_PDEATHSIG, then becomes Python
    %% (c_src/program/py_child_exec.c): Python would need ctypes for it.
    try
        ok = executable(Exe),
        open_port({spawn_executable, filename:join(Priv, "py_child_exec")},
                  [{args, [Exe | Args]}, {env, Env}, binary, stream, exit_status, use_stdio,
                   stderr_to_stdout, hide])
    of
        Port ->
            {os_pid, OsPid} = erlang:port_info(Port, os_pid),
            {ok, #{port => Port, os_pid => OsPid, zygote => undefined, output => <<>>}}
    catch error:Why ->
        {error, {child_start_failed, Why}}
    end;
spawn_process({zygote, Z}, #{spin_us := Spin}, Path, Token) ->
    case py_zygote:fork(Z, Path, Token, Spin) of
        {ok, OsPid} -> {ok, #{port => undefined, os_pid => OsPid, zygote => Z, output => <<>>}};
        {error, Why} -> {error, {child_start_failed, Why}}
    end.

%% What open_port({spawn_executable, Exe}) would say of Exe, which the
%% wrapper executes: `enoent' (no such file; no PATH search), `eacces'.
executable(Exe) ->
    case file:read_file_info(Exe) of
        {ok, #file_info{type = regular, mode = Mode}} when Mode band 8#111 =/= 0 -> ok;
        {ok, _} -> erlang:error(eacces);
        {error, Why} -> erlang:error(Why)
    end.

fast_listen({port, "erlang._zygote"}, _Path) ->
    {ok, undefined};
fast_listen(_How, Path) ->
    maybe_listen(socket:open(local, stream, default), Path).

maybe_listen({ok, S}, Path) ->
    case socket:bind(S, #{family => local, path => Path}) of
        ok ->
            case socket:listen(S, 1) of
                ok -> {ok, S};
                Error -> _ = socket:close(S), Error
            end;
        Error ->
            _ = socket:close(S),
            Error
    end;
maybe_listen(Error, _Path) ->
    Error.

close_listener({ok, undefined}) -> ok;
close_listener({ok, S}) when is_port(S) -> gen_tcp:close(S);
close_listener({ok, S}) -> socket:close(S);
close_listener(_) -> ok.

connect(Listen = {LSock, _}, FastListen = {FSock, _}, Token, Config, Deadline, L) ->
    Accepted = accept(LSock, Deadline, L),
    ok = unlisten(Listen),
    case Accepted of
        {ok, Sock, L1} ->
            case handshake(Sock, Token, Config, Deadline) of
                {ok, Info} ->
                    FastAccepted = accept_fast(FSock, Token, Deadline),
                    ok = unlisten(FastListen),
                    case FastAccepted of
                        {ok, Fast} ->
                            {ok, maps:remove(zygote, L1#{sock => Sock, fast => Fast,
                                                         info => Info})};
                        {error, Why} ->
                            _ = gen_tcp:close(Sock),
                            failed(Why, L1)
                    end;
                {error, Why} ->
                    ok = unlisten(FastListen),
                    _ = gen_tcp:close(Sock),
                    failed(Why, L1)
            end;
        {exited, Reason, L1} ->
            ok = unlisten(FastListen),
            {error, {child_exited_at_start, Reason, maps:get(output, L1)}};
        {error, Why, L1} ->
            ok = unlisten(FastListen),
            failed(Why, L1)
    end.

%% Close a listener and delete its socket's path.
unlisten({undefined, _Path}) ->
    ok;
unlisten({S, Path}) ->
    _ = case is_port(S) of
            true -> gen_tcp:close(S);
            false -> socket:close(S)
        end,
    _ = file:delete(Path),
    ok.

failed(Why, L = #{os_pid := OsPid, port := Port}) ->
    _ = py_nif:os_signal(OsPid, ?SIGKILL),
    _ = Port =/= undefined andalso catch port_close(Port),
    {error, {startup_error, Why, maps:get(output, L)}}.

%% Accept in short slices, so that a process that dies before it connects
%% is seen at once (its exit status, with what it printed).
accept(Listen, Deadline, L) ->
    case gen_tcp:accept(Listen, 20) of
        {ok, Sock} ->
            {ok, Sock, L};
        {error, timeout} ->
            case exited(L) of
                {true, Reason} ->
                    {exited, Reason, collect_output(L)};
                false ->
                    case erlang:monotonic_time(millisecond) < Deadline of
                        true -> accept(Listen, Deadline, collect_output(L));
                        false -> {error, start_timeout, L}
                    end
            end;
        {error, Why} ->
            {error, Why, L}
    end.

exited(#{port := Port, zygote := undefined}) ->
    receive {Port, {exit_status, S}} -> {true, py_isolated_opts:exit_reason(S)}
    after 0 -> false
    end;
exited(#{zygote := Z, os_pid := OsPid}) ->
    receive {py_zygote_exit, Z, OsPid, Reason} -> {true, Reason}
    after 0 -> false
    end.

collect_output(L = #{port := undefined}) ->
    L;
collect_output(L = #{port := Port, output := Out}) ->
    receive
        {Port, {data, D}} -> collect_output(L#{output := <<Out/binary, D/binary>>})
    after 0 ->
        L
    end.

handshake(Sock, Token, Config, Deadline) ->
    TokenBin = list_to_binary(Token),
    case recv(Sock, Deadline) of
        {ok, <<?HELLO, _:64, _:64, Body/binary>>} ->
            case decode(Body) of
                {TokenBin, Info = #{os_pid := _, python_version := _, executable := _,
                                    platform := _}} ->
                    ok = gen_tcp:send(Sock, [<<?CONFIG, 0:64, 0:64>> | term_to_binary(Config)]),
                    case recv(Sock, Deadline) of
                        {ok, <<?READY, _/binary>>} -> {ok, Info};
                        {ok, <<?STARTUP_ERROR, _:64, _:64, Err/binary>>} -> {error, [decode(Err)]};
                        {ok, _} -> {error, bad_handshake};
                        {error, _} = E -> E
                    end;
                _ ->
                    {error, bad_token}
            end;
        {ok, _} ->
            {error, bad_handshake};
        {error, _} = E ->
            E
    end.

%% The fast socket, connected before READY: its first frame is the token.
accept_fast(undefined, _Token, _Deadline) ->
    {ok, undefined};
accept_fast(FastListen, Token, Deadline) ->
    case socket:accept(FastListen, left(Deadline)) of
        {ok, Fast} ->
            TokenBin = list_to_binary(Token),
            case py_isolated_caller:recv_frame(Fast, left(Deadline)) of
                {ok, {?FAST_HELLO, _, _, Body}} ->
                    case catch binary_to_term(Body, [safe]) of
                        TokenBin -> {ok, Fast};
                        _ -> socket:close(Fast), {error, bad_token}
                    end;
                _ ->
                    _ = socket:close(Fast),
                    {error, bad_handshake}
            end;
        {error, timeout} ->
            {error, start_timeout};
        {error, Why} ->
            {error, {fast_socket, Why}}
    end.

left(Deadline) ->
    max(0, Deadline - erlang:monotonic_time(millisecond)).

recv(Sock, Deadline) ->
    case gen_tcp:recv(Sock, 0, max(0, Deadline - erlang:monotonic_time(millisecond))) of
        {error, timeout} -> {error, start_timeout};
        Other -> Other
    end.

%% A private directory (0700) for the sockets of this VM's children.
socket_path() ->
    Base = case os:getenv("TMPDIR") of
               false -> "/tmp";
               "" -> "/tmp";
               T -> T
           end,
    Dir = filename:join(Base, "erlang_python." ++ os:getpid()),
    case file:make_dir(Dir) of
        ok -> ok = file:change_mode(Dir, 8#700);
        {error, eexist} -> ok
    end,
    filename:join(Dir, "c" ++ integer_to_list(erlang:unique_integer([positive])) ++ ".sock").

decode_new_atoms(Bin) ->
    Counter = atom_counter(),
    Cap = maps:get(atom_cap, py_opts:runtime()),
    case atomics:get(Counter, 1) < Cap of
        true ->
            Before = erlang:system_info(atom_count),
            Term = binary_to_term(Bin),
            atomics:add(Counter, 1, erlang:system_info(atom_count) - Before),
            Term;
        false ->
            {error, {atom_cap_reached, Cap}}
    end.

atom_counter() ->
    case persistent_term:get({?MODULE, atoms}, undefined) of
        undefined ->
            C = atomics:new(1, []),
            persistent_term:put({?MODULE, atoms}, C),
            C;
        C ->
            C
    end.
