%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc py_zygote: the spare child a zygote forks ahead of each FORK, and
%% many forks and exits at once (py_isolated_SUITE has the children's
%% behaviour: preload, crashes, the zygote's death).
-module(py_zygote_SUITE).

-include_lib("common_test/include/ct.hrl").

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1]).
-export([spare_takes_the_next_fork/1, spare_killed/1, spare_dies_with_zygote/1,
         runs_at_once/1]).

suite() ->
    [{timetrap, {seconds, 120}}].

all() ->
    [spare_takes_the_next_fork, spare_killed, spare_dies_with_zygote, runs_at_once].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(erlang_python),
    Config.

end_per_suite(_Config) ->
    ok = application:stop(erlang_python).

%% Cases.

spare_takes_the_next_fork(_Config) ->
    doc("A zygote keeps one child forked ahead: the next context gets it, and "
        "another is forked for the one after."),
    {ok, Z} = py_zygote:start(#{preload => <<"base = 40">>}),
    {ok, {First, Zygote}} = py_zygote:run(Z, fun(C) -> {ok, {os_pid(C), ppid(os_pid(C))}} end),
    [Spare] = until(fun() -> [P || P <- children(Zygote), P =/= First] end),
    {ok, Spare} = py_zygote:run(Z, fun(C) -> {ok, os_pid(C)} end),
    [Next] = until(fun() -> [P || P <- children(Zygote), P =/= Spare] end),
    true = Next =/= First,
    {ok, 42} = py_zygote:run(Z, fun(C) -> py:eval(C, <<"base + 2">>) end),
    ok = py_zygote:stop(Z).

spare_killed(_Config) ->
    doc("A spare that dies before a context takes it is replaced: the next run "
        "gets a fresh child."),
    {ok, Z} = py_zygote:start(#{}),
    {ok, {First, Zygote}} = py_zygote:run(Z, fun(C) -> {ok, {os_pid(C), ppid(os_pid(C))}} end),
    [Spare] = until(fun() -> [P || P <- children(Zygote), P =/= First] end),
    [] = os:cmd("kill -9 " ++ integer_to_list(Spare)),
    await_os_exit(Spare),
    {ok, Pid} = py_zygote:run(Z, fun(C) -> {ok, os_pid(C)} end),
    true = Pid =/= Spare,
    {ok, 3} = py_zygote:run(Z, fun(C) -> py:eval(C, <<"1 + 2">>) end),
    ok = py_zygote:stop(Z).

spare_dies_with_zygote(_Config) ->
    doc("The spare child goes with its zygote."),
    {ok, Z} = py_zygote:start(#{}),
    {ok, {First, Zygote}} = py_zygote:run(Z, fun(C) -> {ok, {os_pid(C), ppid(os_pid(C))}} end),
    [Spare] = until(fun() -> [P || P <- children(Zygote), P =/= First] end),
    ok = py_zygote:stop(Z),
    await_os_exit(Spare),
    await_os_exit(Zygote).

runs_at_once(_Config) ->
    doc("Runs from several processes at once, children exiting while others are "
        "forked: every run answers (the zygote's exit reports never cut into its "
        "other frames)."),
    {ok, Z} = py_zygote:start(#{preload => <<"import json">>}),
    Self = self(),
    Pids = [spawn_link(fun() ->
                               Rs = [py_zygote:run(Z, fun(C) -> py:eval(C, <<"json.dumps([n, i])">>,
                                                                        #{n => N, i => I}) end)
                                     || I <- lists:seq(1, 12)],
                               Self ! {self(), Rs}
                       end) || N <- lists:seq(1, 4)],
    [receive
         {P, Rs} ->
             Want = [{ok, iolist_to_binary(io_lib:format("[~w, ~w]", [N, I]))}
                     || I <- lists:seq(1, 12)],
             Want = Rs
     end || {N, P} <- lists:zip(lists:seq(1, 4), Pids)],
    %% and killed children are reported: a context forked from it restarts
    {ok, Ctx} = py_context:new(#{mode => isolated, zygote => Z}),
    {error, {child_exited, {signal, 9}}} =
        py:eval(Ctx, <<"__import__('os').kill(__import__('os').getpid(), 9)">>),
    {ok, 1} = py:eval(Ctx, <<"1">>),
    ok = py_context:stop(Ctx),
    ok = py_zygote:stop(Z).

%% Internal.

doc(_) -> ok.

os_pid(Ctx) ->
    {ok, #{os_pid := P}} = py_context:child_info(Ctx),
    P.

%% The parent of an OS process (field 4 of /proc/Pid/stat, after the
%% command name in parentheses).
ppid(OsPid) ->
    {ok, Stat} = file:read_file("/proc/" ++ integer_to_list(OsPid) ++ "/stat"),
    [_, After] = binary:split(Stat, <<") ">>),
    [_State, PPid | _] = binary:split(After, <<" ">>, [global]),
    binary_to_integer(PPid).

%% The live children of an OS process.
children(OsPid) ->
    [list_to_integer(P) || P <- string:lexemes(os:cmd("ps -o pid= --ppid " ++
                                                       integer_to_list(OsPid)), " \n"),
                           alive(list_to_integer(P))].

alive(OsPid) ->
    case file:read_file("/proc/" ++ integer_to_list(OsPid) ++ "/stat") of
        {ok, Stat} ->
            [_, After] = binary:split(Stat, <<") ">>),
            binary:first(After) =/= $Z;
        {error, _} ->
            false
    end.

%% Fun() until it returns a non-empty list, for up to 10 s (the zygote forks
%% the next spare just after it answers a FORK).
until(Fun) ->
    until(Fun, erlang:monotonic_time(millisecond) + 10000).

until(Fun, Deadline) ->
    case Fun() of
        [_ | _] = L -> L;
        [] ->
            case erlang:monotonic_time(millisecond) < Deadline of
                true -> until(Fun, Deadline);
                false -> ct:fail(no_spare)
            end
    end.

await_os_exit(OsPid) ->
    Tail = os:find_executable("tail"),
    Port = open_port({spawn_executable, Tail},
                     [{args, ["--pid=" ++ integer_to_list(OsPid), "-f", "/dev/null"]},
                      exit_status]),
    receive {Port, {exit_status, _}} -> ok end.
