%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc Virtual environments: a real venv made with `python -m venv' whose
%% modules (and `.pth' entries) become importable in every context once it
%% is activated and stop being found once it is deactivated;
%% py:ensure_venv/2,3 creating a venv and installing a local wheel with pip
%% (no network); 4.x's error shapes.
-module(py_venv_SUITE).

-include_lib("common_test/include/ct.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1, end_per_testcase/2]).
-export([activate_deactivate/1, invalid_venvs/1, ensure_venv_pip/1, ensure_venv_uv/1,
         ensure_venv_errors/1]).

suite() ->
    [{timetrap, {minutes, 5}}].

all() ->
    [activate_deactivate, invalid_venvs, ensure_venv_pip, ensure_venv_uv, ensure_venv_errors].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(erlang_python),
    {ok, {Major, Minor, _}} = py_context:python_version(),
    #{python := Python} = py_opts:runtime(),
    [{python, binary_to_list(Python)},
     {pyver, lists:flatten(io_lib:format("python~b.~b", [Major, Minor]))} | Config].

end_per_suite(_Config) ->
    ok = application:stop(erlang_python).

end_per_testcase(_Case, _Config) ->
    ok = py:deactivate_venv().

%% Cases.

activate_deactivate(Config) ->
    doc("A venv made with `python -m venv': its modules and its .pth entries import in "
        "the running contexts and in those started later once activated, venv_info/0 "
        "says so, and deactivating takes its directories off sys.path."),
    Dir = filename:join(?config(priv_dir, Config), "venv_plain"),
    ok = run(?config(python, Config), ["-m", "venv", "--without-pip", Dir]),
    Site = filename:join([Dir, "lib", ?config(pyver, Config), "site-packages"]),
    true = filelib:is_dir(Site),
    Extra = filename:join(?config(priv_dir, Config), "venv_plain_extra"),
    ok = write(filename:join(Site, "ops_venv_mod.py"), <<"WHO = 'venv'\n">>),
    ok = write(filename:join(Extra, "ops_venv_pth_mod.py"), <<"WHO = 'pth'\n">>),
    ok = write(filename:join(Site, "ops_extra.pth"), [Extra, "\n"]),
    {error, {'ModuleNotFoundError', _}} = py:eval(<<"__import__('ops_venv_mod').WHO">>),
    {ok, #{<<"active">> := false}} = py:venv_info(),
    ok = py:activate_venv(Dir),
    {ok, <<"venv">>} = py:eval(<<"__import__('ops_venv_mod').WHO">>),
    {ok, <<"pth">>} = py:eval(<<"__import__('ops_venv_pth_mod').WHO">>),
    DirBin = list_to_binary(Dir), SiteBin = list_to_binary(Site),
    {ok, #{<<"active">> := true, <<"venv_path">> := DirBin, <<"site_packages">> := SiteBin,
           <<"sys_path">> := [SiteBin | _]}} = py:venv_info(),
    Mode = case py:subinterp_supported() of
               true -> owngil;
               false -> worker
           end,
    {ok, Ctx} = py_context:new(#{mode => Mode}),
    try
        {ok, <<"venv">>} = py:eval(Ctx, <<"__import__('ops_venv_mod').WHO">>),
        ok = py:deactivate_venv(),
        {ok, false} = py:eval(Ctx, <<"s in __import__('sys').path">>, #{s => SiteBin})
    after
        py_context:stop(Ctx)
    end,
    {ok, #{<<"active">> := false}} = py:venv_info(),
    {ok, false} = py:eval(<<"s in __import__('sys').path or e in __import__('sys').path">>,
                          #{s => SiteBin, e => list_to_binary(Extra)}),
    ok = write(filename:join(Site, "ops_venv_late_mod.py"), <<"X = 1\n">>),
    {error, {'ModuleNotFoundError', _}} = py:eval(<<"__import__('ops_venv_late_mod').X">>).

invalid_venvs(Config) ->
    doc("A directory without site-packages, or a venv of another Python version, is "
        "{error, {invalid_venv, _}}; nothing is activated."),
    Priv = ?config(priv_dir, Config),
    {error, {invalid_venv, no_site_packages_found}} =
        py:activate_venv(filename:join(Priv, "no_such_venv")),
    Old = filename:join(Priv, "venv_old"),
    ok = filelib:ensure_path(filename:join([Old, "lib", "python2.7", "site-packages"])),
    {error, {invalid_venv, {python_version, <<"2.7">>, _}}} = py:activate_venv(Old),
    {ok, #{<<"active">> := false}} = py:venv_info().

ensure_venv_pip(Config) ->
    doc("ensure_venv/3 creates a venv, installs a local wheel listed in a requirements "
        "file with pip (no index, no network) and activates it; a second call finds the "
        "venv and installs nothing new."),
    Priv = ?config(priv_dir, Config),
    Req = requirements(Priv, "pip"),
    Dir = filename:join(Priv, "venv_pip"),
    ok = py:ensure_venv(Dir, Req, [{installer, pip}]),
    true = filelib:is_regular(filename:join(Dir, "pyvenv.cfg")),
    {ok, 42} = py:eval(<<"__import__('ops_wheel_pkg').VALUE">>),
    {ok, #{<<"active">> := true}} = py:venv_info(),
    ok = py:ensure_venv(Dir, Req, #{installer => pip}).

ensure_venv_uv(Config) ->
    doc("With uv on the PATH ensure_venv uses it (and {installer, uv} asks for it); "
        "without, {installer, uv} is {error, {executable_not_found, <<\"uv\">>}}."),
    Priv = ?config(priv_dir, Config),
    Req = requirements(Priv, "uv"),
    Path = os:getenv("PATH"),
    %% uv is installed for the embedded Python (scripts/ensure-deps.sh); its
    %% directory need not be on the PATH
    {ok, UvBin} = run(?config(python, Config), ["-c", "import uv; print(uv.find_uv_bin())"]),
    UvDir = filename:dirname(string:trim(UvBin)),
    try
        true = os:putenv("PATH", "/nonexistent"),
        {error, {executable_not_found, <<"uv">>}} =
            py:ensure_venv(filename:join(Priv, "venv_no_uv"), Req, [{installer, uv}]),
        false = filelib:is_dir(filename:join(Priv, "venv_no_uv")),
        true = os:putenv("PATH", UvDir ++ ":" ++ Path),
        Dir = filename:join(Priv, "venv_uv"),
        ok = py:ensure_venv(Dir, Req),  %% uv, found on the PATH
        {ok, 42} = py:eval(<<"__import__('ops_wheel_pkg').VALUE">>),
        %% uv made it: no pip inside
        false = filelib:is_regular(filename:join([Dir, "bin", "pip"]))
    after
        os:putenv("PATH", Path)
    end.

ensure_venv_errors(Config) ->
    doc("4.x's error shapes: a failing install is {exit_code, Code, Output}; a missing "
        "requirements file, a missing Python and a timeout are errors too; bad options "
        "raise badarg."),
    Priv = ?config(priv_dir, Config),
    Dir = filename:join(Priv, "venv_err"),
    Missing = filename:join(Priv, "missing.txt"),
    {error, {requirements_not_found, _}} = py:ensure_venv(Dir, Missing),
    Bad = filename:join(Priv, "bad-requirements.txt"),
    ok = write(Bad, <<"--no-index\nops-package-that-is-nowhere==1.0\n">>),
    {error, {exit_code, Code, Output}} = py:ensure_venv(Dir, Bad, [{installer, pip}]),
    true = Code =/= 0,
    {match, _} = re:run(Output, "ops-package-that-is-nowhere"),
    {error, {executable_not_found, _}} =
        py:ensure_venv(filename:join(Priv, "venv_nopy"), Bad,
                       [{installer, pip}, {python, "/nonexistent/python3"}]),
    {error, {timeout, _}} =
        py:ensure_venv(filename:join(Priv, "venv_slow"), Bad,
                       [{installer, pip}, {timeout, 1}, force]),
    {'EXIT', {{badarg, {installer, conda}}, _}} =
        (catch py:ensure_venv(Dir, Bad, [{installer, conda}])),
    {ok, #{<<"active">> := false}} = py:venv_info().

%% Helpers.

%% A requirements file naming a wheel built here (pure Python, py3-none-any).
requirements(Priv, Tag) ->
    Wheel = filename:join(Priv, "ops_wheel_pkg-1.0-py3-none-any.whl"),
    Files = [{"ops_wheel_pkg/__init__.py", <<"VALUE = 42\n">>},
             {"ops_wheel_pkg-1.0.dist-info/METADATA",
              <<"Metadata-Version: 2.1\nName: ops-wheel-pkg\nVersion: 1.0\n">>},
             {"ops_wheel_pkg-1.0.dist-info/WHEEL",
              <<"Wheel-Version: 1.0\nGenerator: py_venv_SUITE\nRoot-Is-Purelib: true\n"
                "Tag: py3-none-any\n">>}],
    Record = [[Name, ",sha256=", sha256(Bin), ",", integer_to_list(byte_size(Bin)), "\n"]
              || {Name, Bin} <- Files],
    All = Files ++ [{"ops_wheel_pkg-1.0.dist-info/RECORD",
                     iolist_to_binary([Record, "ops_wheel_pkg-1.0.dist-info/RECORD,,\n"])}],
    {ok, _} = zip:create(Wheel, [{N, B} || {N, B} <- All]),
    Req = filename:join(Priv, "requirements-" ++ Tag ++ ".txt"),
    ok = write(Req, ["--no-index\n", Wheel, "\n"]),
    Req.

sha256(Bin) ->
    B64 = base64:encode(crypto:hash(sha256, Bin)),
    binary:replace(binary:replace(string:trim(B64, trailing, "="), <<"+">>, <<"-">>, [global]),
                   <<"/">>, <<"_">>, [global]).

run(Exe, Args) ->
    Port = open_port({spawn_executable, Exe}, [{args, Args}, exit_status, stderr_to_stdout]),
    wait_port(Port, []).

wait_port(Port, Acc) ->
    receive
        {Port, {data, D}} -> wait_port(Port, [D | Acc]);
        {Port, {exit_status, 0}} when Acc =:= [] -> ok;
        {Port, {exit_status, 0}} -> {ok, lists:flatten(lists:reverse(Acc))};
        {Port, {exit_status, N}} -> {error, N, lists:flatten(lists:reverse(Acc))}
    after 120000 -> {error, timeout}
    end.

write(File, Data) ->
    ok = filelib:ensure_dir(File),
    file:write_file(File, Data).

doc(Text) ->
    ct:comment("~ts", [Text]).
