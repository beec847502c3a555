%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc Preload code: Python run once in every context, whose globals seed
%% the namespace of every Erlang process there (the names and shapes of
%% erlang_python 4.x).
%%
%% ```
%% ok = py_preload:set_code(<<"def double(x):\n    return 2 * x\n">>),
%% {ok, Ctx} = py_context:new(#{}),
%% {ok, 10} = py:eval(Ctx, <<"double(5)">>).
%% '''
%%
%% The code runs in every running context and in every context started
%% later, after the registry's paths and imports; a context made with
%% `py_context:new(#{preload => Code})' runs its own code after it. A
%% process's namespace is seeded when it is made (the process's first call
%% on that context): namespaces made before set_code/1 keep what they
%% had (4.x applies the code to new contexts only). Functions the code
%% defines see its globals, not the calling process's.
-module(py_preload).

-export([set_code/1, get_code/0, clear_code/0, has_preload/0]).

%% API.

%% @doc Set the preload code and run it in every running context.
%% `{error, {ExceptionName, Message}}' when it fails in one of them (the
%% code in place before is kept then).
-spec set_code(binary() | iolist()) -> ok | {error, term()}.
set_code(Code) when is_binary(Code); is_list(Code) ->
    Bin = case unicode:characters_to_binary(Code) of
              B when is_binary(B) -> B;
              _ -> erlang:error({badarg, {code, Code}})
          end,
    case py_setup:change(fun(S) -> S#{preload := Bin} end) of
        {error, Reason} ->
            erlang:error(Reason);
        {#{preload := Before}, _, Results} ->
            case [F || {_, {ok, #{preload := F}}} <- Results, F =/= none] of
                [] ->
                    ok;
                [Failure | _] ->
                    _ = py_setup:change(fun(S) -> S#{preload := Before} end),
                    {error, py_setup:python_error(Failure)}
            end
    end;
set_code(Code) ->
    erlang:error({badarg, {code, Code}}).

%% @doc The preload code, or `undefined'.
-spec get_code() -> binary() | undefined.
get_code() ->
    maps:get(preload, py_setup:settings()).

%% @doc Remove the preload code: namespaces made from now on start empty
%% (save a context's own preload).
-spec clear_code() -> ok.
clear_code() ->
    case py_setup:change(fun(S) -> S#{preload := undefined} end) of
        {error, Reason} -> erlang:error(Reason);
        {_, _, _} -> ok
    end.

%% @doc Whether preload code is set.
-spec has_preload() -> boolean().
has_preload() ->
    get_code() =/= undefined.
