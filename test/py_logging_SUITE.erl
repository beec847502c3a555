%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc Python's `logging' reaches OTP logger: what arrives (levels,
%% messages, metadata), from where (requests, Python threads, own-GIL
%% contexts, contexts started later), and what never leaves Python (levels
%% below the configured one). A logger handler of this suite captures the
%% events of domain `[python]' and sends them to the test process.
-module(py_logging_SUITE).

-include_lib("common_test/include/ct.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1, init_per_testcase/2,
         end_per_testcase/2]).
-export([log/2]).
-export([default_warning/1, level_mapping/1, filtered_in_python/1, format_and_exception/1,
         python_threads/1, owngil_context/1, isolated_context/1, later_context/1,
         handler_and_setup/1,
         bad_options/1]).

all() ->
    [default_warning, level_mapping, filtered_in_python, format_and_exception,
     python_threads, owngil_context, isolated_context, later_context, handler_and_setup,
     bad_options].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(erlang_python),
    #{level := Level} = logger:get_primary_config(),
    ok = logger:set_primary_config(level, all),
    [{primary_level, Level} | Config].

end_per_suite(Config) ->
    ok = logger:set_primary_config(level, ?config(primary_level, Config)),
    ok = application:stop(erlang_python).

init_per_testcase(_Case, Config) ->
    ok = logger:add_handler(py_logging_capture, ?MODULE, #{config => #{to => self()}}),
    Config.

end_per_testcase(_Case, _Config) ->
    ok = logger:remove_handler(py_logging_capture),
    %% back to the default: warning and up
    ok = py:configure_logging(#{level => warning}),
    ok.

%% The logger handler: the suite's events, to the test process.
log(#{meta := #{domain := [python]}} = Event, #{config := #{to := To}}) ->
    To ! {py_log_event, Event},
    ok;
log(_Event, _Config) ->
    ok.

%% Cases.

default_warning(_Config) ->
    doc("Without configuration, logging.warning() reaches OTP logger (not stderr) with "
        "its level, message and metadata, and logging.info() does not."),
    ok = py:exec(<<"import logging\n"
                   "def shout():\n"
                   "    logging.getLogger('shop.orders').info('quiet')\n"
                   "    logging.getLogger('shop.orders').warning('low stock: %d left', 3)\n">>),
    Self = self(),
    {ok, none} = py:call('__main__', shout, []),
    #{level := warning, msg := {string, <<"low stock: 3 left">>}, meta := Meta} = next_event(),
    #{domain := [python], py_logger := <<"shop.orders">>, py_function := <<"shout">>,
      line := 4, pid := Self, py_meta := #{<<"funcName">> := <<"shout">>, <<"lineno">> := 4},
      time := Time} = Meta,
    true = abs(os:system_time(microsecond) - Time) < 60000000,
    no_more_events().

level_mapping(_Config) ->
    doc("Python levels map to OTP logger levels as in erlang_python 4.x: up to 10 debug, "
        "20 info, 30 warning, 40 error, above critical."),
    ok = py:configure_logging(),
    ok = py:exec(<<"import logging\n"
                   "log = logging.getLogger('levels')\n"
                   "for n in (10, 15, 20, 25, 30, 35, 40, 45, 50):\n"
                   "    log.log(n, 'at %d', n)\n">>),
    Got = [{Level, Msg} || #{level := Level, msg := {string, Msg}} <- events(9)],
    [{debug, <<"at 10">>}, {info, <<"at 15">>}, {info, <<"at 20">>},
     {warning, <<"at 25">>}, {warning, <<"at 30">>}, {error, <<"at 35">>},
     {error, <<"at 40">>}, {critical, <<"at 45">>}, {critical, <<"at 50">>}] = Got.

filtered_in_python(_Config) ->
    doc("A record below the configured level never leaves Python: py_logger receives "
        "nothing for it."),
    ok = py:configure_logging(#{level => error}),
    Logger = whereis(py_logger),
    1 = erlang:trace(Logger, true, ['receive']),
    try
        ok = py:exec(<<"import logging\n"
                       "for i in range(100):\n"
                       "    logging.info('dropped %d', i)\n"
                       "    logging.warning('dropped %d', i)\n"
                       "logging.error('kept')\n">>),
        #{level := error, msg := {string, <<"kept">>}} = next_event(),
        [{trace, Logger, 'receive', {py_log, error, _, <<"kept">>, _, _, _, _, _, _, _}}] =
            traces(Logger)
    after
        erlang:trace(Logger, false, ['receive'])
    end,
    {ok, false} = py:eval(<<"__import__('logging').getLogger('any').isEnabledFor(30)">>).

format_and_exception(_Config) ->
    doc("The format option shapes the message; logging.exception() carries the "
        "traceback."),
    ok = py:configure_logging(#{level => info, format => <<"%(name)s|%(levelname)s|%(message)s">>}),
    ok = py:exec(<<"import logging\n"
                   "try:\n"
                   "    1 / 0\n"
                   "except ZeroDivisionError:\n"
                   "    logging.getLogger('calc').exception('failed')\n">>),
    #{level := error, msg := {string, Msg}} = next_event(),
    <<"calc|ERROR|failed\nTraceback", _/binary>> = Msg,
    {match, _} = re:run(Msg, "ZeroDivisionError: division by zero").

python_threads(_Config) ->
    doc("Records from Python threads no context made arrive too, with the thread's name "
        "and no caller pid."),
    ok = py:configure_logging(#{level => info}),
    ok = py:exec(<<"import logging, threading\n"
                   "def work(i):\n"
                   "    logging.getLogger('worker').info('thread %d', i)\n"
                   "ts = [threading.Thread(target=work, args=(i,), name=f'w{i}') for i in range(4)]\n"
                   "[t.start() for t in ts]\n"
                   "[t.join() for t in ts]\n">>),
    Events = events(4),
    Names = lists:sort([T || #{meta := #{py_thread := T}} <- Events]),
    [<<"w0">>, <<"w1">>, <<"w2">>, <<"w3">>] = Names,
    Logger = whereis(py_logger),
    [Logger] = lists:usort([P || #{meta := #{pid := P}} <- Events]),
    [<<"thread 0">>, <<"thread 1">>, <<"thread 2">>, <<"thread 3">>] =
        lists:sort([M || #{msg := {string, M}} <- Events]).

owngil_context(_Config) ->
    doc("An own-GIL context's records arrive, at the level configured before it started "
        "(Python 3.12+)."),
    case py:subinterp_supported() of
        false ->
            {skip, "own-GIL contexts need Python 3.12+"};
        true ->
            ok = py:configure_logging(#{level => info}),
            {ok, Ctx} = py_context:new(#{mode => owngil}),
            try
                ok = py:exec(Ctx, <<"import logging\n"
                                    "logging.getLogger('sub').debug('no')\n"
                                    "logging.getLogger('sub').info('from a sub-interpreter')\n">>),
                #{level := info, msg := {string, <<"from a sub-interpreter">>},
                  meta := #{py_logger := <<"sub">>}} = next_event(),
                no_more_events()
            after
                py_context:stop(Ctx)
            end
    end.

isolated_context(_Config) ->
    doc("An isolated context's records (a child OS process) arrive, at the level "
        "configured before it started and after a change, with the caller's pid."),
    ok = py:configure_logging(#{level => info}),
    {ok, Ctx} = py_context:new(#{mode => isolated}),
    Self = self(),
    try
        ok = py:exec(Ctx, <<"import logging\n"
                            "logging.getLogger('child').debug('no')\n"
                            "logging.getLogger('child').info('from a child process')\n">>),
        #{level := info, msg := {string, <<"from a child process">>},
          meta := #{py_logger := <<"child">>, pid := Self}} = next_event(),
        ok = py:configure_logging(#{level => error}),
        ok = py:exec(Ctx, <<"logging.getLogger('child').warning('hidden')\n"
                            "logging.getLogger('child').error('shown')\n">>),
        #{level := error, msg := {string, <<"shown">>}} = next_event(),
        no_more_events()
    after
        py_context:stop(Ctx)
    end.

later_context(_Config) ->
    doc("A context started after configure_logging/1 logs at that level; a change "
        "reaches the contexts that run."),
    %% the default contexts apply it on their threads at once, in one
    %% interpreter: one handler, however often
    [ok = py:configure_logging(#{level => L}) || _ <- lists:seq(1, 10), L <- [info, debug]],
    {ok, 1} = py:eval(<<"sum(isinstance(h, __import__('erlang').ErlangHandler) "
                        "for h in __import__('logging').getLogger().handlers)">>),
    {ok, Ctx} = py_context:new(#{}),
    try
        ok = py:exec(Ctx, <<"import logging\nlogging.getLogger('late').debug('seen')\n">>),
        #{level := debug, msg := {string, <<"seen">>}} = next_event(),
        ok = py:configure_logging(#{level => critical}),
        ok = py:exec(Ctx, <<"logging.getLogger('late').error('hidden')\n"
                            "logging.getLogger('late').critical('loud')\n">>),
        #{level := critical, msg := {string, <<"loud">>}} = next_event(),
        no_more_events()
    after
        py_context:stop(Ctx)
    end.

handler_and_setup(_Config) ->
    doc("erlang.ErlangHandler is a logging.Handler usable on any logger, and "
        "erlang.setup_logging(level, format) configures the root logger from Python."),
    ok = py:exec(<<"import erlang, logging\n"
                   "h = erlang.ErlangHandler()\n"
                   "assert isinstance(h, logging.Handler)\n"
                   "own = logging.getLogger('own')\n"
                   "own.propagate = False\n"
                   "own.setLevel(logging.DEBUG)\n"
                   "own.addHandler(h)\n"
                   "own.debug('via my handler')\n"
                   "own.removeHandler(h)\n">>),
    #{level := debug, msg := {string, <<"via my handler">>}} = next_event(),
    ok = py:exec(<<"erlang.setup_logging(level=20, format='[%(message)s]')\n"
                   "logging.info('configured')\n">>),
    #{level := info, msg := {string, <<"[configured]">>}} = next_event(),
    {ok, 1} = py:eval(<<"sum(isinstance(h, erlang.ErlangHandler) "
                        "for h in logging.getLogger().handlers)">>),
    %% a context that starts applies the application's settings again, and
    %% leaves what Python set alone
    {ok, Ctx} = py_context:new(#{}),
    ok = py_context:stop(Ctx),
    {ok, 20} = py:eval(<<"logging.getLogger().level">>),
    ok = py:exec(<<"logging.info('still configured')\n">>),
    #{level := info, msg := {string, <<"[still configured]">>}} = next_event().

bad_options(_Config) ->
    doc("Bad options raise badarg."),
    {'EXIT', {{badarg, {level, verbose}}, _}} = catch py:configure_logging(#{level => verbose}),
    {'EXIT', {{badarg, {colour, red}}, _}} = catch py:configure_logging(#{colour => red}),
    {'EXIT', {{badarg, {opts, nope}}, _}} = catch py:configure_logging(nope),
    ok.

%% Helpers.

next_event() ->
    receive {py_log_event, Event} -> Event
    after 5000 -> ct:fail(no_log_event)
    end.

events(N) ->
    [next_event() || _ <- lists:seq(1, N)].

%% py_logger has handled every record sent before this call (a sync call
%% queues behind them), and none of them was for the suite's handler.
no_more_events() ->
    _ = py_logger:dropped(),
    receive {py_log_event, Event} -> ct:fail({unexpected, Event})
    after 0 -> ok
    end.

traces(Pid) ->
    _ = py_logger:dropped(),
    Ref = erlang:trace_delivered(Pid),
    receive {trace_delivered, Pid, Ref} -> ok end,
    collect_traces(Pid).

collect_traces(Pid) ->
    receive {trace, Pid, 'receive', {'$gen_call', _, _}} -> collect_traces(Pid);
            {trace, Pid, 'receive', _} = T -> [T | collect_traces(Pid)]
    after 0 -> []
    end.

doc(Text) ->
    ct:comment("~ts", [Text]).
