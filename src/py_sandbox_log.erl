%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc Logs the sandbox's denials through OTP `logger'.
%%
%% The C side (c_src/sandbox/sandbox.c) sends `{py_sandbox_denied, Operation, Class,
%% Detail, Caller, Suppressed}' to this registered process for at most
%% `sandbox_log_limit' denials a second (app env, default 10) and counts the
%% others: `Suppressed' is how many were not sent since the previous message.
%% `Caller' is the Erlang process whose request was running, or `undefined'
%% (a Python thread of its own). Each message becomes one warning with a
%% report, in logger domain `[erlang_python, sandbox]'.
-module(py_sandbox_log).
-behaviour(gen_server).

-export([start_link/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).
-export([format_report/1]).

-include_lib("kernel/include/logger.hrl").

-type denial() :: #{what := python_sandbox_denied,
                    operation := binary(), class := binary(), detail := binary(),
                    caller := pid() | undefined, suppressed := non_neg_integer()}.
-export_type([denial/0]).

%% API.

%% @doc Start the registered logger process.
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% @doc The text of a denial report (logger `report_cb').
-spec format_report(denial()) -> {io:format(), [term()]}.
format_report(#{operation := Op, class := Class, detail := Detail, caller := Caller,
                suppressed := Suppressed}) ->
    {"Python sandbox denied ~ts (~ts~ts) in a request of ~p~ts",
     [Op, Class, [[", ", Detail] || Detail =/= <<>>], Caller,
      [io_lib:format("; ~b more denial(s) not logged", [Suppressed]) || Suppressed > 0]]}.

%% gen_server.

%% @private
-spec init([]) -> {ok, #{}}.
init([]) ->
    {ok, #{}}.

%% @private
-spec handle_call(term(), gen_server:from(), #{}) -> {reply, {error, unknown_call}, #{}}.
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_call}, State}.

%% @private
-spec handle_cast(term(), #{}) -> {noreply, #{}}.
handle_cast(_Msg, State) ->
    {noreply, State}.

%% @private
-spec handle_info(term(), #{}) -> {noreply, #{}}.
handle_info({py_sandbox_denied, Op, Class, Detail, Caller, Suppressed}, State) ->
    ?LOG_WARNING(#{what => python_sandbox_denied, operation => Op, class => Class,
                   detail => Detail, caller => Caller, suppressed => Suppressed},
                 #{domain => [erlang_python, sandbox],
                   report_cb => fun ?MODULE:format_report/1}),
    {noreply, State};
handle_info(_Other, State) ->
    {noreply, State}.
