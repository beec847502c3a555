%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc The erlang_python application: starts CPython and the contexts.
-module(py_app).
-behaviour(application).

-export([start/2, stop/1]).

%% @doc Start the supervision tree (the runtime first, then the contexts).
-spec start(application:start_type(), term()) -> {ok, pid()} | {error, term()}.
start(_Type, _Args) ->
    py_sup:start_link().

%% @doc Nothing to do: py_runtime finalizes Python as the tree shuts down.
-spec stop(term()) -> ok.
stop(_State) ->
    ok.
