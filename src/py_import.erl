%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc Modules imported and directories put on `sys.path' in every
%% context: the ones running now and the ones started later (the names and
%% result shapes of erlang_python 4.x).
%%
%% ```
%% ok = py_import:ensure_imported(json),
%% true = py_import:is_imported(json),
%% ok = py_import:add_path("/srv/app/python"),
%% '''
%%
%% The registry starts from the app env `imports' (`{Module, Func}' pairs or
%% module names) and `paths'; it is kept by py_setup, which applies it to
%% every context (docs/operations.md).
-module(py_import).

-export([ensure_imported/1, ensure_imported/2, is_imported/1, is_imported/2,
         all_imports/0, import_list/0, clear_imports/0,
         add_path/1, add_paths/1, all_paths/0, is_path_added/1, clear_paths/0]).

-type py_module() :: atom() | binary() | string().
-type py_func() :: atom() | binary() | string().
-export_type([py_module/0, py_func/0]).

%% API.

%% @doc Import a module in every context now and in every context started
%% later. `{error, {ExceptionName, Message}}' when a running context cannot
%% import it (the registry is then left as it was); `{error,
%% main_not_cacheable}' for `__main__' (a caller's own namespace).
-spec ensure_imported(py_module()) -> ok | {error, term()}.
ensure_imported(Module) ->
    register_import(py_request:name(module, Module), all).

%% @doc ensure_imported/1, and check that the module has `Func'.
-spec ensure_imported(py_module(), py_func()) -> ok | {error, term()}.
ensure_imported(Module, Func) ->
    register_import(py_request:name(module, Module), py_request:name(function, Func)).

%% @doc Whether a module is in the registry.
-spec is_imported(py_module()) -> boolean().
is_imported(Module) ->
    M = py_request:name(module, Module),
    lists:keymember(M, 1, imports()).

%% @doc Whether a module's function is in the registry (a module registered
%% whole counts for every function).
-spec is_imported(py_module(), py_func()) -> boolean().
is_imported(Module, Func) ->
    M = py_request:name(module, Module),
    F = py_request:name(function, Func),
    lists:member({M, all}, imports()) orelse lists:member({M, F}, imports()).

%% @doc The registry: `[{Module, all | Func}]', in the order registered.
-spec all_imports() -> [{binary(), all | binary()}].
all_imports() ->
    imports().

%% @doc The registry by module: `{ok, #{Module => [Func]}}' (`[]' for a
%% module registered whole).
-spec import_list() -> {ok, #{binary() => [binary()]}}.
import_list() ->
    {ok, lists:foldl(fun({M, all}, Acc) -> Acc#{M => maps:get(M, Acc, [])};
                        ({M, F}, Acc) -> Acc#{M => maps:get(M, Acc, []) ++ [F]}
                     end, #{}, imports())}.

%% @doc Empty the registry (modules already imported stay imported).
-spec clear_imports() -> ok.
clear_imports() ->
    done(py_setup:change(fun(S) -> S#{imports := []} end)).

%% @doc Put a directory first on `sys.path' in every context, now and
%% later (after the ones added before it).
-spec add_path(string() | binary() | atom()) -> ok.
add_path(Path) ->
    add_paths([Path]).

%% @doc add_path/1 for several directories, in order.
-spec add_paths([string() | binary() | atom()]) -> ok.
add_paths(Paths) when is_list(Paths) ->
    New = [py_request:name(path, P) || P <- Paths],
    done(py_setup:change(fun(#{paths := Old} = S) -> S#{paths := append_new(Old, New)} end));
add_paths(Paths) ->
    erlang:error({badarg, {paths, Paths}}).

%% @doc The directories of the registry, first first.
-spec all_paths() -> [binary()].
all_paths() ->
    maps:get(paths, py_setup:settings()).

%% @doc Whether a directory is in the registry.
-spec is_path_added(string() | binary() | atom()) -> boolean().
is_path_added(Path) ->
    lists:member(py_request:name(path, Path), all_paths()).

%% @doc Empty the registry of directories; they leave `sys.path' in every
%% context too.
-spec clear_paths() -> ok.
clear_paths() ->
    done(py_setup:change(fun(S) -> S#{paths := []} end)).

%% Internal.

imports() ->
    maps:get(imports, py_setup:settings()).

register_import(<<"__main__">>, _) ->
    {error, main_not_cacheable};
register_import(M, F) ->
    Entry = {M, F},
    case py_setup:change(fun(#{imports := Is} = S) ->
                                 case lists:member(Entry, Is) of
                                     true -> S;
                                     false -> S#{imports := Is ++ [Entry]}
                                 end
                         end) of
        {error, _} = Error ->
            Error;
        {#{imports := Before}, _, Results} ->
            case [{N, Msg} || {_, {ok, #{imports := Failed}}} <- Results,
                              {FM, FF, N, Msg} <- Failed, FM =:= M, FF =:= F orelse FF =:= all] of
                [] ->
                    ok;
                [Failure | _] ->
                    _ = case lists:member(Entry, Before) of
                            true -> ok;
                            false -> py_setup:change(fun(#{imports := Is} = S) ->
                                                             S#{imports := lists:delete(Entry, Is)}
                                                     end)
                        end,
                    {error, py_setup:python_error(Failure)}
            end
    end.

append_new(List, New) ->
    lists:foldl(fun(P, Acc) ->
                        case lists:member(P, Acc) of
                            true -> Acc;
                            false -> Acc ++ [P]
                        end
                end, List, New).

done({error, Reason}) -> erlang:error(Reason);
done({_, _, _}) -> ok.
