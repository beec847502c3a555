%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc Virtual environments: activate one in every context (now and in the
%% contexts started later), and create one with its requirements installed.
%% Behind py:activate_venv/1, py:deactivate_venv/0, py:venv_info/0 and
%% py:ensure_venv/2,3.
%%
%% Activating puts the venv's `site-packages' (and what its `.pth' files
%% add: editable installs) first on `sys.path' of every interpreter; the
%% interpreter stays the embedded one, so the venv must be of the same
%% Python version. Creating and installing run programs (`python -m venv',
%% `uv', `pip') through Erlang ports, never a shell, and never from inside
%% the embedded interpreter (whose sandbox refuses to start processes).
-module(py_venv).

-export([activate/1, deactivate/0, info/0, ensure/3]).
-export_type([ensure_opts/0]).

-type ensure_opts() :: [{extras, [string() | binary()]} | {installer, uv | pip}
                        | {python, string() | binary()} | force | no_deps
                        | {timeout, timeout()}]
                     | #{extras => [string() | binary()], installer => uv | pip,
                         python => string() | binary(), force => boolean(),
                         no_deps => boolean(), timeout => timeout()}.

-define(TIMEOUT, 300000).

%% API.

%% @doc Activate the venv at `Path' in every context: `ok', or
%% `{error, {invalid_venv, no_site_packages_found}}', or `{error,
%% {invalid_venv, {python_version, VenvVersion, EmbeddedVersion}}}' for a
%% venv of another Python.
-spec activate(string() | binary()) -> ok | {error, term()}.
activate(Path) ->
    Dir = filename:absname(py_request:name(venv, Path)),
    case site_packages(Dir) of
        {ok, SitePackages} ->
            case py_setup:change(fun(S) -> S#{venv := {Dir, SitePackages}} end) of
                {error, Reason} -> {error, Reason};
                {_, _, _} -> ok
            end;
        {error, _} = Error ->
            Error
    end.

%% @doc Deactivate the active venv everywhere (its directories leave
%% `sys.path'; modules already imported from it stay imported).
-spec deactivate() -> ok.
deactivate() ->
    case py_setup:change(fun(S) -> S#{venv := undefined} end) of
        {error, Reason} -> erlang:error(Reason);
        {_, _, _} -> ok
    end.

%% @doc The venv active in the caller's context, as 4.x reports it:
%% `{ok, #{<<"active">> => false}}' or `{ok, #{<<"active">> => true,
%% <<"venv_path">>, <<"site_packages">>, <<"sys_path">>}}'.
-spec info() -> {ok, map()} | {error, term()}.
info() ->
    py:call('erlang._setup', venv_info, []).

%% @doc Make sure a venv exists at `Path' with the requirements of
%% `ReqFile' installed, then activate it. A `requirements.txt'-style file
%% is installed with `-r'; a `pyproject.toml' as an editable install of its
%% directory (with `extras'). The installer is `uv' when it is on the PATH,
%% else the venv's `pip' (option `installer'); the venv is made with the
%% embedded Python (option `python') and made again with `force';
%% `no_deps' installs the listed packages without their dependencies. Each
%% program may run for `timeout' ms (default 300000).
%% Errors: `{error, {exit_code, Code, Output}}', `{error,
%% {executable_not_found, Exe}}', `{error, {invalid_venv, _}}',
%% `{error, {requirements_not_found, File}}', `{error, {timeout, Exe}}'.
-spec ensure(string() | binary(), string() | binary(), ensure_opts()) -> ok | {error, term()}.
ensure(Path, ReqFile, Opts0) ->
    Opts = opts(Opts0),
    Dir = unicode:characters_to_list(filename:absname(py_request:name(venv, Path))),
    Req = unicode:characters_to_list(filename:absname(py_request:name(requirements, ReqFile))),
    case filelib:is_regular(Req) of
        false -> {error, {requirements_not_found, unicode:characters_to_binary(Req)}};
        true ->
            Steps = [fun() -> make_venv(Dir, Opts) end,
                     fun() -> install(Dir, Req, Opts) end,
                     fun() -> activate(Dir) end],
            run_steps(Steps)
    end.

%% Internal.

run_steps([]) -> ok;
run_steps([Step | Rest]) ->
    case Step() of
        ok -> run_steps(Rest);
        {error, _} = Error -> Error
    end.

opts(L) when is_list(L) ->
    opts(maps:from_list([case O of
                             force -> {force, true};
                             no_deps -> {no_deps, true};
                             {K, V} -> {K, V};
                             _ -> erlang:error({badarg, {opts, L}})
                         end || O <- L]));
opts(M) when is_map(M) ->
    maps:fold(fun(extras, V, Acc) when is_list(V) -> Acc#{extras => [str(E) || E <- V]};
                 (installer, V, Acc) when V =:= uv; V =:= pip -> Acc#{installer => V};
                 (python, V, Acc) -> Acc#{python => str(V)};
                 (force, V, Acc) when is_boolean(V) -> Acc#{force => V};
                 (no_deps, V, Acc) when is_boolean(V) -> Acc#{no_deps => V};
                 (timeout, V, Acc) when V =:= infinity; is_integer(V), V > 0 ->
                      Acc#{timeout => V};
                 (K, V, _) -> erlang:error({badarg, {K, V}})
              end, #{extras => [], installer => auto, force => false, no_deps => false,
                     timeout => ?TIMEOUT}, M);
opts(Other) ->
    erlang:error({badarg, {opts, Other}}).

str(V) -> unicode:characters_to_list(py_request:name(option, V)).

make_venv(Dir, #{force := Force} = Opts) ->
    Exists = filelib:is_regular(filename:join(Dir, "pyvenv.cfg")),
    case Exists andalso not Force of
        true -> ok;
        false ->
            _ = Exists andalso file:del_dir_r(Dir),
            Python = maps:get(python, Opts, embedded_python()),
            case installer(Opts) of
                {ok, {uv, Uv}} -> run(Uv, ["venv", "--python", Python, Dir], Opts);
                {ok, pip} -> run(Python, ["-m", "venv", Dir], Opts);
                {error, _} = Error -> Error
            end
    end.

install(Dir, Req, #{extras := Extras, no_deps := NoDeps} = Opts) ->
    Target0 = case filename:basename(Req) of
                 "pyproject.toml" ->
                     Project = filename:dirname(Req),
                     ["-e", case Extras of
                                [] -> Project;
                                _ -> Project ++ "[" ++ lists:join(",", Extras) ++ "]"
                            end];
                 _ ->
                     ["-r", Req]
             end,
    Target = [A || NoDeps, A <- ["--no-deps"]] ++ Target0,
    VenvPython = filename:join([Dir, "bin", "python"]),
    case installer(Opts) of
        {ok, {uv, Uv}} -> run(Uv, ["pip", "install", "--python", VenvPython | Target], Opts);
        {ok, pip} -> run(VenvPython, ["-m", "pip", "install", "--disable-pip-version-check" | Target], Opts);
        {error, _} = Error -> Error
    end.

installer(#{installer := pip}) -> {ok, pip};
installer(#{installer := uv}) ->
    case os:find_executable("uv") of
        false -> {error, {executable_not_found, <<"uv">>}};
        Uv -> {ok, {uv, Uv}}
    end;
installer(#{installer := auto}) ->
    case os:find_executable("uv") of
        false -> {ok, pip};
        Uv -> {ok, {uv, Uv}}
    end.

embedded_python() ->
    #{python := Exe} = py_opts:runtime(),
    unicode:characters_to_list(Exe).

%% Run a program (no shell) and wait for it: ok, or its exit code and output.
run(Exe, Args, #{timeout := Timeout}) ->
    Path = case filename:pathtype(Exe) of
               absolute -> filelib:is_regular(Exe) andalso Exe;
               _ -> os:find_executable(Exe)
           end,
    case Path of
        false ->
            {error, {executable_not_found, unicode:characters_to_binary(Exe)}};
        _ ->
            Port = open_port({spawn_executable, Path},
                             [{args, Args}, exit_status, binary, stderr_to_stdout, hide]),
            collect(Port, Exe, Timeout, [])
    end.

collect(Port, Exe, Timeout, Acc) ->
    receive
        {Port, {data, Data}} ->
            collect(Port, Exe, Timeout, [Data | Acc]);
        {Port, {exit_status, 0}} ->
            ok;
        {Port, {exit_status, Code}} ->
            {error, {exit_code, Code, iolist_to_binary(lists:reverse(Acc))}}
    after Timeout ->
        stop_program(Port),
        {error, {timeout, unicode:characters_to_binary(Exe)}}
    end.

%% The program outlived its timeout: SIGTERM through `kill' (a port, no
%% shell), then close the port.
stop_program(Port) ->
    case {erlang:port_info(Port, os_pid), os:find_executable("kill")} of
        {{os_pid, OsPid}, Kill} when is_list(Kill) ->
            K = open_port({spawn_executable, Kill},
                          [{args, ["-TERM", integer_to_list(OsPid)]}, exit_status, hide]),
            receive {K, {exit_status, _}} -> ok after 5000 -> ok end;
        _ ->
            ok
    end,
    catch port_close(Port),
    receive {Port, _} -> ok after 0 -> ok end.

%% The venv's site-packages for the embedded Python's version.
site_packages(Dir) ->
    {ok, {Major, Minor, _}} = py_context:python_version(),
    Embedded = lists:flatten(io_lib:format("~b.~b", [Major, Minor])),
    Wanted = filename:join([Dir, "lib", "python" ++ Embedded, "site-packages"]),
    case filelib:is_dir(Wanted) of
        true ->
            {ok, Wanted};
        false ->
            case filelib:wildcard(unicode:characters_to_list(
                                    filename:join([Dir, "lib", "python*", "site-packages"]))) of
                [Other | _] ->
                    "python" ++ Version = filename:basename(filename:dirname(Other)),
                    {error, {invalid_venv, {python_version, list_to_binary(Version),
                                            list_to_binary(Embedded)}}};
                [] ->
                    {error, {invalid_venv, no_site_packages_found}}
            end
    end.
