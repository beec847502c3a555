%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc Python's `logging' records into OTP logger.
%%
%% `erlang.ErlangHandler' (priv/python/erlang/_logging.py) sends each record
%% it handles to this registered process as
%% `{py_log, Level, LoggerName, Message, Module, Line, Function, Path,
%% ThreadName, CallerPid | none, TimeUs}'; this process calls
%% `logger:log/3' with the level and the metadata:
%%
%% - `domain => [python]';
%% - `py_logger' (the Python logger's name), `py_module', `py_function',
%%   `py_thread', and `file'/`line' (the source of the call);
%% - `py_meta => #{<<"module">>, <<"lineno">>, <<"funcName">>}' as in
%%   erlang_python 4.x;
%% - `pid': the Erlang process whose request logged (the caller), when the
%%   record came from a request, else this process;
%% - `time': when Python made the record (not when it arrived).
%%
%% Records come as plain messages (`erlang.send'), from any Python thread
%% and any kind of context, so a context in another OS process needs only
%% to deliver its sends. Level filtering happens in Python before a record
%% is sent (py:configure_logging/1); OTP logger's own levels and filters
%% apply after it.
%%
%% A flood is bounded: past `?MAX_QUEUE' messages waiting, records are
%% dropped and counted, and the count is logged once the queue is short
%% again.
-module(py_logger).
-behaviour(gen_server).

-export([start_link/0, dropped/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

-define(MAX_QUEUE, 50000).

%% API.

%% @doc Start the logger bridge (registered as `py_logger').
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% @doc How many records were dropped because too many were waiting.
-spec dropped() -> non_neg_integer().
dropped() ->
    gen_server:call(?MODULE, dropped).

%% gen_server.

%% @private
-spec init([]) -> {ok, #{dropped := non_neg_integer(), unreported := non_neg_integer()}}.
init([]) ->
    {ok, #{dropped => 0, unreported => 0}}.

%% @private
-spec handle_call(term(), gen_server:from(), map()) -> {reply, term(), map()}.
handle_call(dropped, _From, #{dropped := N} = State) ->
    {reply, N, State};
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_call}, State}.

%% @private
-spec handle_cast(term(), map()) -> {noreply, map()}.
handle_cast(_Msg, State) ->
    {noreply, State}.

%% @private
-spec handle_info(term(), map()) -> {noreply, map()}.
handle_info({py_log, Level, _, _, _, _, _, _, _, _, _} = Record, State) when is_atom(Level) ->
    case erlang:process_info(self(), message_queue_len) of
        {message_queue_len, N} when N > ?MAX_QUEUE ->
            #{dropped := D, unreported := U} = State,
            {noreply, State#{dropped := D + 1, unreported := U + 1}};
        _ ->
            {noreply, log(Record, report_drops(State))}
    end;
handle_info(_Msg, State) ->
    {noreply, State}.

%% Internal.

log({py_log, Level, Name, Msg, Module, Line, Func, Path, Thread, Caller, Time}, State) ->
    Meta0 = #{domain => [python], py_logger => Name, py_module => Module,
              py_function => Func, py_thread => Thread, file => path(Path), line => Line,
              py_meta => #{<<"module">> => Module, <<"lineno">> => Line, <<"funcName">> => Func}},
    Meta1 = case is_integer(Time) of
                true -> Meta0#{time => Time};
                false -> Meta0
            end,
    Meta = case is_pid(Caller) of
               true -> Meta1#{pid => Caller};
               false -> Meta1
           end,
    _ = catch logger:log(Level, message(Msg), Meta),
    State.

report_drops(#{unreported := 0} = State) ->
    State;
report_drops(#{unreported := U} = State) ->
    logger:warning("py_logger: ~b Python log records dropped (more than ~b waiting)",
                   [U, ?MAX_QUEUE], #{domain => [python]}),
    State#{unreported := 0}.

message(Msg) when is_binary(Msg) -> Msg;
message(Msg) -> unicode:characters_to_binary(io_lib:format("~tp", [Msg])).

path(P) when is_binary(P) -> unicode:characters_to_list(P);
path(_) -> "".
