%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc Programs through Erlang ports: erlang.subprocess (run, Popen and its
%% pipes, input, timeouts, check, text, cwd/env), asyncio subprocesses on
%% ErlangEventLoop, the `programs' policy and `redirect_subprocess'.
-module(py_program_SUITE).
-compile([export_all, nowarn_export_all]).

-include_lib("stdlib/include/assert.hrl").

all() ->
    [run_basics, stderr_apart, input_and_text, pipes, timeout_kills, check_errors,
     cwd_and_env, start_failures, signals, owner_death_kills, asyncio_exec,
     asyncio_shell, policy_deny, policy_list, redirect, stdlib_stays_blocked].

suite() ->
    [{timetrap, {seconds, 60}}].

init_per_suite(Config) ->
    {ok, Started} = application:ensure_all_started(erlang_python),
    [{started, Started} | Config].

end_per_suite(Config) ->
    _ = [application:stop(A) || A <- lists:reverse(proplists:get_value(started, Config))],
    ok.

init_per_testcase(_, Config) ->
    Config.

end_per_testcase(_, _Config) ->
    ok = application:set_env(erlang_python, programs, allow),
    ok = application:set_env(erlang_python, redirect_subprocess, false).

doc(Text) ->
    ct:comment("~ts", [Text]).

exec(Code) ->
    py:exec(<<"import erlang.subprocess as sp, os, signal, time\n", Code/binary>>).

ok(Code) ->
    case exec(Code) of
        ok -> ok;
        Other -> ct:fail({Code, Other, py:last_traceback()})
    end.

run_basics(_) ->
    doc("run() of a program: its return code, no shell, capture_output."),
    ok(<<"r = sp.run(['true'])\nassert r.returncode == 0 and r.stdout is None, r\n"
         "assert sp.run(['false']).returncode == 1\n"
         "r = sp.run(['echo', 'a b', '$HOME'], capture_output=True)\n"
         "assert r.stdout == b'a b $HOME\\n' and r.stderr == b'', r\n"
         "assert sp.call(['true']) == 0 and sp.check_call(['true']) == 0\n"
         "assert sp.check_output(['printf', '%s', 'x']) == b'x'\n"
         "assert sp.getstatusoutput('exit 3') == (3, '')\n">>).

stderr_apart(_) ->
    doc("stderr is kept apart from stdout, or merged with stderr=STDOUT; DEVNULL."),
    ok(<<"cmd = ['sh', '-c', 'echo out; echo err >&2']\n"
         "r = sp.run(cmd, capture_output=True)\n"
         "assert (r.stdout, r.stderr) == (b'out\\n', b'err\\n'), r\n"
         "r = sp.run(cmd, stdout=sp.PIPE, stderr=sp.STDOUT)\n"
         "assert r.stdout == b'out\\nerr\\n' and r.stderr is None, r\n"
         "r = sp.run(cmd, stdout=sp.PIPE, stderr=sp.DEVNULL)\n"
         "assert r.stdout == b'out\\n', r\n"
         "big = sp.run(['head', '-c', '1000000', '/dev/zero'], capture_output=True)\n"
         "assert big.stdout == bytes(1000000)\n">>).

input_and_text(_) ->
    doc("input= (bytes, or str in text mode), text=True decoding and newlines."),
    ok(<<"assert sp.run(['cat'], input=b'\\x00\\xff', capture_output=True).stdout == b'\\x00\\xff'\n"
         "r = sp.run(['cat'], input='h\\u00e9\\r\\n', text=True, capture_output=True)\n"
         "assert r.stdout == 'h\\u00e9\\n', repr(r.stdout)\n"
         "assert sp.check_output(['echo', 'x'], text=True) == 'x\\n'\n">>).

pipes(_) ->
    doc("Popen with stdin/stdout pipes used as files, then communicate()."),
    ok(<<"p = sp.Popen(['cat'], stdin=sp.PIPE, stdout=sp.PIPE)\n"
         "p.stdin.write(b'one\\n')\np.stdin.flush()\n"
         "assert p.stdout.readline() == b'one\\n'\n"
         "out, err = p.communicate(b'two\\n')\n"
         "assert (out, err, p.returncode) == (b'two\\n', None, 0), (out, err)\n"
         "with sp.Popen(['sh', '-c', 'echo 1; echo 2'], stdout=sp.PIPE, text=True) as p:\n"
         "    assert list(p.stdout) == ['1\\n', '2\\n']\n"
         "assert p.returncode == 0\n">>).

timeout_kills(_) ->
    doc("A timeout raises TimeoutExpired and kills the program (run), within "
        "the timeout plus a little; wait(timeout) leaves it running."),
    ok(<<"t = time.monotonic()\n"
         "try:\n    sp.run(['sleep', '30'], timeout=0.3)\n    raise AssertionError('no timeout')\n"
         "except sp.TimeoutExpired as e:\n    assert e.timeout == 0.3\n"
         "assert time.monotonic() - t < 5\n"
         "p = sp.Popen(['sleep', '30'])\n"
         "try:\n    p.wait(timeout=0.1)\n    raise AssertionError('no timeout')\n"
         "except sp.TimeoutExpired:\n    pass\n"
         "assert p.poll() is None\np.kill()\nassert p.wait() == -signal.SIGKILL\n">>).

check_errors(_) ->
    doc("check=True raises CalledProcessError with the output; the stdlib's classes."),
    ok(<<"import subprocess\nassert sp.CalledProcessError is subprocess.CalledProcessError\n"
         "try:\n    sp.run(['sh', '-c', 'echo o; exit 2'], check=True, capture_output=True)\n"
         "    raise AssertionError\n"
         "except subprocess.CalledProcessError as e:\n"
         "    assert (e.returncode, e.stdout) == (2, b'o\\n'), e\n"
         "try:\n    sp.check_call(['false'])\n    raise AssertionError\n"
         "except sp.CalledProcessError as e:\n    assert e.returncode == 1\n">>).

cwd_and_env(_) ->
    doc("cwd= and env= (the program's whole environment); by default the "
        "program gets os.environ as Python sees it (writes stay in Python)."),
    ok(<<"r = sp.run(['pwd'], cwd='/tmp', capture_output=True)\nassert r.stdout == b'/tmp\\n', r\n"
         "r = sp.run(['env'], env={'ONLY': '1'}, capture_output=True)\n"
         "assert r.stdout == b'ONLY=1\\n', r\n"
         "os.environ['PY_PROGRAM_SUITE'] = 'seen'\n"
         "try:\n"
         "    r = sp.run('echo $PY_PROGRAM_SUITE', shell=True, capture_output=True)\n"
         "    assert r.stdout == b'seen\\n', r\n"
         "finally:\n    del os.environ['PY_PROGRAM_SUITE']\n">>),
    false = os:getenv("PY_PROGRAM_SUITE").

start_failures(_) ->
    doc("A program that cannot start raises the OSError subprocess raises."),
    ok(<<"try:\n    sp.run(['/nonexistent/prog'])\n    raise AssertionError\n"
         "except FileNotFoundError as e:\n    assert e.filename == '/nonexistent/prog', e\n"
         "try:\n    sp.run(['true'], cwd='/nonexistent')\n    raise AssertionError\n"
         "except FileNotFoundError as e:\n    assert e.filename == '/nonexistent', e\n"
         "import tempfile\nwith tempfile.NamedTemporaryFile() as f:\n"
         "    os.chmod(f.name, 0o644)\n"
         "    try:\n        sp.run([f.name])\n        raise AssertionError\n"
         "    except PermissionError as e:\n        assert e.filename == f.name\n"
         "try:\n    sp.Popen(['true'], preexec_fn=print)\n    raise AssertionError\n"
         "except ValueError:\n    pass\n">>).

signals(_) ->
    doc("terminate(), kill() and send_signal() reach the program; returncode "
        "is minus the signal, as in subprocess."),
    ok(<<"p = sp.Popen(['sleep', '30'])\nassert p.pid > 0\np.terminate()\n"
         "assert p.wait() == -signal.SIGTERM\n"
         "p = sp.Popen(['sleep', '30'])\np.send_signal(signal.SIGINT)\n"
         "assert p.wait() == -signal.SIGINT\np.kill()  # ended: nothing happens\n">>).

owner_death_kills(_) ->
    doc("When the Erlang process whose request started a program dies, the "
        "program is killed."),
    Self = self(),
    {Pid, Mon} = spawn_monitor(
                   fun() ->
                           ok = py:exec(<<"import erlang.subprocess as sp\n"
                                          "p = sp.Popen(['sleep', '30'])\n">>),
                           {ok, OsPid} = py:eval(<<"p.pid">>),
                           Self ! {os_pid, self(), OsPid},
                           receive stop -> ok end
                   end),
    OsPid = receive {os_pid, Pid, P} -> P end,
    true = alive(OsPid),
    Pid ! stop,
    receive {'DOWN', Mon, process, Pid, _} -> ok end,
    wait_dead(OsPid, 100).

alive(OsPid) ->
    filelib:is_dir("/proc/" ++ integer_to_list(OsPid))
        andalso not lists:prefix("Z", state(OsPid)).

state(OsPid) ->
    case file:read_file("/proc/" ++ integer_to_list(OsPid) ++ "/stat") of
        {ok, B} -> [_, Rest] = binary:split(B, <<") ">>), binary_to_list(Rest);
        {error, _} -> "gone"
    end.

%% The kill is asynchronous (the port closes, the wrapper kills): poll
%% /proc, each try after a monitor-free wait on a timer message.
wait_dead(OsPid, 0) ->
    ct:fail({still_running, OsPid});
wait_dead(OsPid, N) ->
    case alive(OsPid) of
        false -> ok;
        true ->
            erlang:send_after(50, self(), tick),
            receive tick -> ok end,
            wait_dead(OsPid, N - 1)
    end.

asyncio_exec(_) ->
    doc("asyncio.create_subprocess_exec on ErlangEventLoop: communicate with "
        "input, stdout and stderr apart, the return code, kill and wait."),
    ok(<<"import asyncio, erlang\n"
         "PIPE = asyncio.subprocess.PIPE\n"
         "async def main():\n"
         "    p = await asyncio.create_subprocess_exec('sh', '-c', 'cat; echo e >&2; exit 4',\n"
         "                                             stdin=PIPE, stdout=PIPE, stderr=PIPE)\n"
         "    out = await p.communicate(b'in')\n"
         "    q = await asyncio.create_subprocess_exec('sleep', '30')\n"
         "    q.kill()\n"
         "    return out, p.returncode, await q.wait()\n"
         "r = erlang.run(main())\n"
         "assert r == ((b'in', b'e\\n'), 4, -signal.SIGKILL), r\n">>).

asyncio_shell(_) ->
    doc("asyncio.create_subprocess_shell and reading lines as they come."),
    ok(<<"import asyncio, erlang\n"
         "async def main():\n"
         "    p = await asyncio.create_subprocess_shell('echo 1; echo 2',\n"
         "                                              stdout=asyncio.subprocess.PIPE)\n"
         "    lines = [await p.stdout.readline(), await p.stdout.readline()]\n"
         "    return lines, await p.wait()\n"
         "assert erlang.run(main()) == ([b'1\\n', b'2\\n'], 0)\n">>).

policy_deny(_) ->
    doc("{programs, deny}: every program is refused with the documented "
        "RuntimeError, from erlang.subprocess and from asyncio."),
    ok = application:set_env(erlang_python, programs, deny),
    Msg = "running true is blocked in Erlang VM context.\n"
          "The application environment programs of erlang_python does not allow it.\n"
          "Add the executable to {programs, [...]}, or run it from Erlang.",
    {error, {'RuntimeError', Msg}} = exec(<<"sp.run(['true'])">>),
    {error, {'RuntimeError', _}} =
        exec(<<"import asyncio, erlang\n"
               "async def main():\n    await asyncio.create_subprocess_exec('true')\n"
               "erlang.run(main())">>).

policy_list(_) ->
    doc("{programs, [...]}: a name (found in PATH) or an absolute path is "
        "allowed; anything else, a shell included, is refused."),
    ok = application:set_env(erlang_python, programs, [<<"echo">>, "/bin/true"]),
    ok(<<"assert sp.run(['echo'], capture_output=True).stdout == b'\\n'\n"
         "assert sp.run(['/bin/true']).returncode == 0\n">>),
    {error, {'RuntimeError', "running cat is blocked" ++ _}} = exec(<<"sp.run(['cat'])">>),
    {error, {'RuntimeError', "running /bin/sh is blocked" ++ _}} =
        exec(<<"sp.run('echo', shell=True)">>).

redirect(_) ->
    doc("redirect_subprocess => true: the standard subprocess (and os.popen) "
        "runs programs through ports; os.system stays blocked."),
    ok = application:set_env(erlang_python, redirect_subprocess, true),
    ok(<<"import subprocess\n"
         "r = subprocess.run(['sh', '-c', 'echo o; echo e >&2'], capture_output=True)\n"
         "assert (r.stdout, r.stderr) == (b'o\\n', b'e\\n'), r\n"
         "assert subprocess.check_output('echo $((6*7))', shell=True, text=True) == '42\\n'\n"
         "assert os.popen('echo hi').read() == 'hi\\n'\n">>),
    {error, {'RuntimeError', "os.system is blocked" ++ _}} = exec(<<"os.system('true')">>).

stdlib_stays_blocked(_) ->
    doc("By default the stdlib's subprocess, os.system and os.popen keep the "
        "seed's exact messages."),
    Process = "fork()/exec() would corrupt the Erlang runtime.\n"
              "Use Erlang ports (open_port/2) for subprocess management.",
    Popen = "subprocess.Popen is blocked in Erlang VM context.\n" ++ Process,
    {error, {'RuntimeError', Popen}} = exec(<<"import subprocess\nsubprocess.run(['true'])">>),
    {error, {'RuntimeError', Popen}} = exec(<<"os.popen('true')">>),
    {error, {'RuntimeError', "os.system is blocked in Erlang VM context.\n" ++ Process}} =
        exec(<<"os.system('true')">>).
