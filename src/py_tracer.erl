%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc The spans Python's `erlang.Span' and `@erlang.trace' record.
%%
%% A span that ends is sent to this registered process as
%% `{py_span, SpanMap}' (priv/python/erlang/_tracing.py says what the map
%% holds). It keeps the most recent ones, at most the app env
%% `trace_buffer' (default 10000): when full, the oldest is dropped and
%% counted (erlang_python 4.x keeps every span until cleared, without
%% bound). Whether Python records spans at all is a setting of every
%% context (py:enable_tracing/0, py_setup), so that a disabled span costs
%% Python one flag test and sends nothing.
-module(py_tracer).
-behaviour(gen_server).

-export([start_link/0, spans/0, clear/0, stats/0, set_capacity/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

-record(st, {spans = queue:new() :: queue:queue(map()),
             count = 0 :: non_neg_integer(),
             cap :: pos_integer(),
             dropped = 0 :: non_neg_integer()}).

%% API.

%% @doc Start the span store (registered as `py_tracer').
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% @doc The spans kept, oldest (first ended) first.
-spec spans() -> [map()].
spans() ->
    gen_server:call(?MODULE, spans).

%% @doc Drop the spans kept and reset the count of dropped ones.
-spec clear() -> ok.
clear() ->
    gen_server:call(?MODULE, clear).

%% @doc `#{count, capacity, dropped}': spans kept, the most that are kept,
%% and how many were dropped (the oldest, when full) since the last clear.
-spec stats() -> #{count := non_neg_integer(), capacity := pos_integer(),
                   dropped := non_neg_integer()}.
stats() ->
    gen_server:call(?MODULE, stats).

%% @doc Change how many spans are kept (the oldest beyond it are dropped).
-spec set_capacity(pos_integer()) -> ok.
set_capacity(Cap) when is_integer(Cap), Cap > 0 ->
    gen_server:call(?MODULE, {capacity, Cap});
set_capacity(Cap) ->
    erlang:error({badarg, {capacity, Cap}}).

%% gen_server.

%% @private
-spec init([]) -> {ok, #st{}}.
init([]) ->
    Cap = case application:get_env(erlang_python, trace_buffer, 10000) of
              N when is_integer(N), N > 0 -> N;
              V -> erlang:error({badarg, {trace_buffer, V}})
          end,
    {ok, #st{cap = Cap}}.

%% @private
-spec handle_call(term(), gen_server:from(), #st{}) -> {reply, term(), #st{}}.
handle_call(spans, _From, #st{spans = Q} = St) ->
    {reply, queue:to_list(Q), St};
handle_call(clear, _From, St) ->
    {reply, ok, St#st{spans = queue:new(), count = 0, dropped = 0}};
handle_call(stats, _From, #st{count = N, cap = Cap, dropped = D} = St) ->
    {reply, #{count => N, capacity => Cap, dropped => D}, St};
handle_call({capacity, Cap}, _From, St) ->
    {reply, ok, trim(St#st{cap = Cap})};
handle_call(_Request, _From, St) ->
    {reply, {error, unknown_call}, St}.

%% @private
-spec handle_cast(term(), #st{}) -> {noreply, #st{}}.
handle_cast(_Msg, St) ->
    {noreply, St}.

%% @private
-spec handle_info(term(), #st{}) -> {noreply, #st{}}.
handle_info({py_span, Span}, #st{spans = Q, count = N} = St) when is_map(Span) ->
    {noreply, trim(St#st{spans = queue:in(Span, Q), count = N + 1})};
handle_info(_Msg, St) ->
    {noreply, St}.

%% Internal.

trim(#st{count = N, cap = Cap} = St) when N =< Cap ->
    St;
trim(#st{spans = Q, count = N, dropped = D} = St) ->
    trim(St#st{spans = queue:drop(Q), count = N - 1, dropped = D + 1}).
