%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% @doc The caller's side of an isolated context (py_isolated): requests
%% go from the calling process straight to the child, and a synchronous
%% caller reads its reply itself.
%%
%% Waking a blocked OS thread costs tens of microseconds on a virtual
%% machine, several times what a small request costs the child; a round
%% trip through the context process and the VM's I/O poller pays that
%% three or four times. So the child's fast socket (a `socket' module
%% socket, usable from any process) is written by the callers themselves,
%% and its replies are read by the callers that wait for them: one at a
%% time, the *reader*, which polls the socket for `reply_spin_us' before it
%% waits for the poller, and hands the replies of others to them as
%% messages. The reader's pid number in the child sits in the generation's
%% `Lead' atomic (0: none reads). A reader whose reply came hands the role
%% to another waiting caller (a `{py_ilead, Lead}' message; the atomic is
%% the truth, the message a hint), or gives it up when none waits.
%%
%% Every request is in the context's ETS table (py_isolated.hrl) from
%% before it is sent until its reply is taken from there, by whoever takes
%% it first: the reader that reads it, the context process (replies on the
%% control socket, crashes, stops), or the caller that gives up at its
%% deadline. A reader consumes only whole frames (it peeks first), so a
%% reader that dies leaves the socket at a frame boundary; the context
%% process then asks the child to send again the replies such a reader may
%% have taken with it.
-module(py_isolated_caller).

-export([submit/4, request/3, recv_frame/2, hand_off/4, take/3, result/1, keep/1]).

-include("py_isolated.hrl").

-define(OWNER, '$py_isolated_owner').
%% The helpers running a request's callbacks: {?HELPERS, Ref} in the
%% caller's process dictionary.
-define(HELPERS, '$py_isolated_helpers').
-define(PEEK, 1024).
%% How often (ms) a waiting caller looks whether the context process still
%% runs (whether its table is there).
-define(CHECK, 100).

%% A waiting synchronous caller.
-record(w, {server :: pid(), tab :: ets:tid(), load :: atomics:atomics_ref(),
            id :: pos_integer(), ref :: reference(), deadline :: integer() | infinity,
            gen = 0 :: non_neg_integer(), fast :: socket:socket() | undefined,
            lead :: atomics:atomics_ref() | undefined, n = 0 :: non_neg_integer(),
            spin = 0 :: non_neg_integer()}).

%% @doc Run a request and wait for its result (in the caller's process).
-spec request(py_isolated:ctx(), term(), timeout()) -> term().
request({py_isolated, Pid, {Load, Tab}}, Payload, Timeout) ->
    Ref = make_ref(),
    Deadline = case Timeout of
                   infinity -> infinity;
                   _ -> erlang:monotonic_time(millisecond) + Timeout
               end,
    W = #w{server = Pid, tab = Tab, load = Load, ref = Ref, deadline = Deadline,
           id = atomics:add_get(Load, 3, 1)},
    Result = try send(W, sync, Ref, term_to_binary(Payload), undefined) of
                 {fast, W1} -> wait(W1);
                 {slow, W1} -> follow(W1);
                 closed -> {error, closed}
             after
                 callbacks_done(Ref)
             end,
    %% The payload's NIF resources (shared dicts, channels: term_to_binary
    %% does not hold them) live until the child is done with them.
    ok = ?MODULE:keep(Payload),
    Result.

%% @doc Nothing; called with a term so that it stays alive until then.
-spec keep(term()) -> ok.
keep(_Term) ->
    ok.

%% @doc Send a request whose result comes as a message (`Tag' none: a
%% cast, no result): `{ok, Ref}' or `{error, closed}'. The table keeps the
%% payload until the reply (its NIF resources with it).
-spec submit(py_isolated:ctx(), atom(), reference(), term()) ->
          {ok, reference()} | {error, closed}.
submit({py_isolated, Pid, {Load, Tab}}, Tag, Ref, Payload) ->
    W = #w{server = Pid, tab = Tab, load = Load, ref = Ref, deadline = infinity,
           id = atomics:add_get(Load, 3, 1)},
    case send(W, Tag, Ref, term_to_binary(Payload), Payload) of
        closed -> {error, closed};
        _ -> {ok, Ref}
    end.

%% Register the request, then send it on the fast socket, or through the
%% context process when there is no child to send it to now, or this
%% process has no number in it yet (the context process gives it one).
send(W = #w{server = Pid, tab = Tab, load = Load, id = Id}, Tag, Ref, Bin, Keep) ->
    Owner = owner(),
    R = #ireq{id = Id, from = self(), ref = Ref, tag = Tag, owner = Owner, bin = Bin,
              keep = Keep},
    try gen(Tab) of
        {Gen, Fast, Lead, Spin} when Fast =/= undefined ->
            case numbers(Pid, Gen, Owner) of
                {ON, CN} ->
                    true = ets:insert(Tab, R#ireq{n = CN, gen = Gen}),
                    added(Load),
                    Kind = case Tag of sync -> ?REQ_SYNC; _ -> ?REQ end,
                    Frame = [<<(?HEAD + byte_size(Bin)):32, Kind, Id:64, ON:32, CN:32>> | Bin],
                    W1 = W#w{gen = Gen, fast = Fast, lead = Lead, n = CN, spin = Spin},
                    case socket:send(Fast, Frame) of
                        ok ->
                            {fast, W1};
                        {error, _} ->
                            %% The child is gone: the context process sends
                            %% it to the next one, unless it answered it.
                            case take(Tab, Load, Id) of
                                [_] -> slow(W, R);
                                [] -> {slow, W1}
                            end
                    end;
                retry ->
                    send(W, Tag, Ref, Bin, Keep);
                closed ->
                    closed
            end;
        _ ->
            slow(W, R)
    catch error:badarg ->
        closed
    end.

slow(W = #w{server = Pid, tab = Tab, id = Id}, R) ->
    try ets:insert(Tab, R) of
        true -> Pid ! {req, Id}, {slow, W}
    catch error:badarg -> closed
    end.

gen(Tab) ->
    [{cur, gen, Gen, Fast, Lead, Spin}] = ets:lookup(Tab, gen),
    {Gen, Fast, Lead, Spin}.

%% This process's number and its namespace owner's in the child of
%% generation Gen, from the context process once per generation.
numbers(Pid, Gen, Owner) ->
    case get({?MODULE, Pid}) of
        {Gen, Owner, ON, CN} ->
            {ON, CN};
        _ ->
            try gen_server:call(Pid, {numbers, Owner, self()}, infinity) of
                {ok, Gen, ON, CN} -> put({?MODULE, Pid}, {Gen, Owner, ON, CN}), {ON, CN};
                {ok, _Other, _, _} -> retry;
                {error, _} -> closed
            catch exit:_ -> closed
            end
    end.

owner() ->
    case get(?OWNER) of
        undefined -> self();
        Owner -> Owner
    end.

%% Waiting: the reader, or a caller the reader or the context process
%% sends its reply to.

wait(W = #w{lead = Lead, n = N}) ->
    case atomics:compare_exchange(Lead, 1, 0, N) of
        ok -> read(W, spin_end(W));
        _ -> follow(W)
    end.

follow(W = #w{ref = Ref, lead = Lead, n = N}) ->
    receive
        {Ref, Reply} ->
            done(W, Reply);
        {py_ilead, Lead} when Lead =/= undefined ->
            case atomics:get(Lead, 1) of
                N -> read(W, spin_end(W));
                _ -> follow(W)
            end;
        {py_icallback, Ref, Id, Body} ->
            ok = callback(W, Id, Body),
            follow(W)
    after pause(W) ->
        check(W, fun follow/1)
    end.

%% The reply came as a message: a reader handed the role to this process
%% meanwhile, it passes it on.
done(W = #w{lead = Lead, n = N}, Reply) ->
    _ = Lead =/= undefined andalso N > 0 andalso atomics:get(Lead, 1) =:= N
        andalso release(W),
    result(Reply).

timed_out(W = #w{server = Pid, tab = Tab, load = Load, id = Id, ref = Ref}) ->
    case take(Tab, Load, Id) of
        [R] ->
            Pid ! {abandon, Id, R#ireq.gen},
            %% A callback sent before the entry was taken: the child stops
            %% waiting for its answer when the request is stopped.
            ok = flush_callbacks(Ref),
            done(W, {error, timeout});
        [] ->
            %% Taken by the one sending the reply: it is on its way.
            on_its_way(W)
    end.

flush_callbacks(Ref) ->
    receive {py_icallback, Ref, _, _} -> flush_callbacks(Ref)
    after 0 -> ok
    end.

on_its_way(W = #w{ref = Ref}) ->
    receive
        {Ref, Reply} -> done(W, Reply)
    after ?CHECK ->
        case alive(W) of
            true -> on_its_way(W);
            false -> {error, closed}
        end
    end.

%% A waiting caller does not monitor the context process: a monitor and
%% its removal are signals to it, which wake it (often asleep, on another
%% scheduler) twice a call, and take a core from the children. The
%% context process gives every request in flight its `{error, closed}'
%% when it stops (terminate/2); a caller that has waited ?CHECK ms looks at
%% the context's table, which goes with the process, for the case where it
%% was killed.
pause(#w{deadline = infinity}) -> ?CHECK;
pause(#w{deadline = D}) -> max(0, min(?CHECK, D - erlang:monotonic_time(millisecond))).

%% After a pause: the deadline has passed, the context is gone, or Wait again.
check(W, Wait) ->
    case expired(W) of
        true -> timed_out(W);
        false ->
            case alive(W) of
                true -> Wait(W);
                false -> {error, closed}
            end
    end.

alive(#w{tab = Tab}) ->
    ets:info(Tab, owner) =/= undefined.

spin_end(#w{spin = Spin}) ->
    erlang:monotonic_time(microsecond) + Spin.

%% The reader: poll the fast socket until the spin time is over, then wait
%% for the poller; dispatch every whole frame read.
read(W = #w{fast = Fast, ref = Ref}, SpinEnd) ->
    case frames(W) of
        {mine, Reply} ->
            release(W),
            result(Reply);
        none ->
            receive
                {Ref, Reply} -> release(W), result(Reply);
                {py_icallback, Ref, Id, Body} -> ok = callback(W, Id, Body), read(W, SpinEnd)
            after 0 ->
                case erlang:monotonic_time(microsecond) < SpinEnd andalso not expired(W) of
                    true ->
                        %% The callers this one has handed replies to run
                        %% meanwhile (on this scheduler, they would wait
                        %% for the end of the spin).
                        erlang:yield(),
                        read(W, SpinEnd);
                    false -> block(W, socket:recv(Fast, 0, [peek], nowait))
                end
            end;
        closed ->
            release(W),
            follow(W#w{lead = undefined})
    end.

block(W, {ok, _}) ->
    read(W, spin_end(W));
block(W = #w{fast = Fast, ref = Ref}, {select, Info = {select_info, _, Handle}}) ->
    receive
        {'$socket', Fast, select, Handle} ->
            read(W, spin_end(W));
        {'$socket', Fast, abort, {Handle, _}} ->
            read(W, spin_end(W));  % closed: the child is replaced, or the context gone
        {Ref, Reply} ->
            cancel(Fast, Info, Handle), release(W), result(Reply);
        {py_icallback, Ref, Id, Body} ->
            ok = callback(W, Id, Body), block(W, {select, Info})
    after pause(W) ->
        case expired(W) orelse not alive(W) of
            true ->
                cancel(Fast, Info, Handle),
                release(W),
                check(W#w{lead = undefined}, fun follow/1);
            false ->
                block(W, {select, Info})
        end
    end;
block(W, {error, _}) ->
    release(W),
    follow(W#w{lead = undefined}).

cancel(Fast, Info, Handle) ->
    _ = socket:cancel(Fast, Info),
    receive {'$socket', Fast, select, Handle} -> ok after 0 -> ok end.

expired(#w{deadline = infinity}) -> false;
expired(#w{deadline = D}) -> erlang:monotonic_time(millisecond) >= D.

%% The whole frames that have arrived: `{mine, Reply}' when this caller's
%% reply is among them, `none' when not, `closed' at end of file.
frames(W = #w{fast = Fast}) ->
    frames(W, socket:recv(Fast, ?PEEK, [peek], 0)).

frames(W = #w{fast = Fast}, Peeked) ->
    case Peeked of
        {ok, Data = <<Len:32, _/binary>>} when byte_size(Data) < Len + 4 ->
            %% A frame longer than a peek: look at all of it when it is whole.
            case byte_size(Data) =:= ?PEEK andalso socket:recv(Fast, Len + 4, [peek], 0) of
                {ok, Whole} when byte_size(Whole) =:= Len + 4 -> frames(W, {ok, Whole});
                _ -> none
            end;
        {ok, Data} ->
            case whole(Data, 0) of
                0 -> none;
                Len ->
                    case socket:recv(Fast, Len, [], 0) of
                        {ok, Frames} -> dispatch(Frames, W, none);
                        {error, _} -> closed
                    end
            end;
        {error, timeout} -> none;
        {error, _} -> closed
    end.

whole(<<Len:32, _:Len/binary, Rest/binary>>, Acc) -> whole(Rest, Acc + 4 + Len);
whole(_, Acc) -> Acc.

dispatch(<<Len:32, ?REPLY, Id:64, _:64, Body:(Len - ?HEAD)/binary, Rest/binary>>,
         W = #w{tab = Tab, load = Load, id = Mine, server = Pid}, Acc) ->
    case take(Tab, Load, Id) of
        [#ireq{id = Mine}] ->
            dispatch(Rest, W, {mine, {bin, Body}});
        [#ireq{from = From, ref = Ref, tag = sync}] ->
            From ! {Ref, {bin, Body}},
            dispatch(Rest, W, Acc);
        [] ->
            %% Given up by its caller, or sent again: done in the child.
            Pid ! {done, Id},
            dispatch(Rest, W, Acc)
    end;
dispatch(<<>>, _W, Acc) ->
    Acc;
dispatch(_Bad, #w{server = Pid}, Acc) ->
    Pid ! fast_garbled,
    Acc.

%% Give up the reader's role: to a caller that waits, or to none.
release(#w{lead = undefined}) ->
    ok;
release(#w{tab = Tab, load = Load, lead = Lead, n = N, gen = Gen}) ->
    %% Nothing in flight (the common case of one caller): no one to hand to.
    case atomics:get(Load, 1) =< 0 andalso atomics:compare_exchange(Lead, 1, N, 0) =:= ok of
        true ->
            case atomics:get(Load, 1) =< 0 orelse atomics:compare_exchange(Lead, 1, 0, N) =/= ok of
                true -> ok;
                false -> hand_off_safe(Tab, Lead, N, Gen)
            end;
        false ->
            hand_off_safe(Tab, Lead, N, Gen)
    end.

hand_off_safe(Tab, Lead, N, Gen) ->
    try hand_off(Tab, Lead, N, Gen)
    catch error:badarg -> ok
    end.

%% @doc Hand the reader's role, held as Me (0: none holds it), to a caller
%% waiting for a reply from generation Gen, or give it up.
-spec hand_off(ets:tid(), atomics:atomics_ref(), non_neg_integer(), non_neg_integer()) -> ok.
hand_off(Tab, Lead, Me, Gen) ->
    case waiter(Tab, Gen) of
        {Id, Pid, N} ->
            case atomics:compare_exchange(Lead, 1, Me, N) of
                ok ->
                    case ets:member(Tab, Id) of
                        true ->
                            Pid ! {py_ilead, Lead},
                            ok;
                        false ->
                            %% It got its reply meanwhile: take the role back
                            %% (unless it saw it was given the role, and passed it on).
                            case atomics:compare_exchange(Lead, 1, N, Me) of
                                ok -> hand_off(Tab, Lead, Me, Gen);
                                _ -> ok
                            end
                    end;
                _ ->
                    ok
            end;
        none ->
            case atomics:compare_exchange(Lead, 1, Me, 0) of
                ok ->
                    %% One may have come between the look and the release.
                    case waiter(Tab, Gen) =/= none andalso
                        atomics:compare_exchange(Lead, 1, 0, Me) =:= ok of
                        true -> hand_off(Tab, Lead, Me, Gen);
                        false -> ok
                    end;
                _ ->
                    ok
            end
    end.

waiter(Tab, Gen) ->
    Self = self(),
    Match = [{#ireq{id = '$1', from = '$2', n = '$3', tag = sync, gen = Gen, _ = '_'},
              [{'=/=', '$2', {const, Self}}, {'>', '$3', 0}], [{{'$1', '$2', '$3'}}]}],
    case ets:select(Tab, Match, 1) of
        {[Found], _} -> Found;
        _ -> none
    end.

%% @doc Take request Id from the table (once, by whoever comes first).
-spec take(ets:tid(), atomics:atomics_ref(), pos_integer()) -> [#ireq{}].
take(Tab, Load, Id) ->
    case ets:take(Tab, Id) of
        [_] = Taken ->
            %% The load's age: since the context's last answer (or since
            %% it became busy), so that a context answering a steady stream
            %% of callers does not look held to the router.
            case atomics:sub_get(Load, 1, 1) of
                0 -> atomics:put(Load, 2, 0);
                _ -> atomics:put(Load, 2, erlang:monotonic_time(microsecond))
            end,
            Taken;
        [] ->
            []
    end.

added(Load) ->
    case atomics:add_get(Load, 1, 1) of
        1 -> atomics:put(Load, 2, erlang:monotonic_time(microsecond));
        _ -> ok
    end.

%% @doc A reply as the caller returns it: a body from the child decoded.
-spec result(term()) -> term().
result({bin, Bin}) -> py_isolated_launch:decode(Bin);
result(Term) -> Term.

%% A callback (erlang.call in the request) runs in a helper linked to the
%% caller (killed with it), so that the caller keeps waiting for its
%% reply. Its own requests run in the caller's namespace, on the caller's
%% context. An answer that holds a reference is kept by the helper until
%% the request ends (a NIF resource's must live while the child decodes
%% and opens it; the helper also leaves if the caller goes); the helper
%% unlinks before it exits, so that a caller trapping exits gets no
%% `{'EXIT', _, normal}' message for each callback.
callback(#w{server = Pid, ref = Ref}, Id, Body) ->
    Owner = owner(),
    Route = py_router:cached(),
    Caller = self(),
    Helper = proc_lib:spawn_link(
               fun() ->
                       put(?OWNER, Owner),
                       ok = py_router:adopt(Route),
                       ok = py_semaphore:exempt(),
                       Result = py_isolated:run_callback(Pid, Id, Body),
                       _ = py_isolated:names_ref(Result) andalso keep_until_done(Caller, Ref),
                       true = unlink(Caller),
                       ?MODULE:keep(Result)
               end),
    put({?HELPERS, Ref}, [Helper | helpers(Ref)]),
    ok.

keep_until_done(Caller, Ref) ->
    Mon = erlang:monitor(process, Caller),
    receive
        {py_idone, Ref} -> erlang:demonitor(Mon, [flush]);
        {'DOWN', Mon, process, Caller, _} -> true
    end.

helpers(Ref) ->
    case get({?HELPERS, Ref}) of
        undefined -> [];
        Helpers -> Helpers
    end.

%% The request Ref has ended: its callbacks' helpers may go.
callbacks_done(Ref) ->
    _ = [Helper ! {py_idone, Ref} || Helper <- helpers(Ref)],
    _ = erase({?HELPERS, Ref}),
    ok.

%% @doc One frame read directly from a fast socket (start-up):
%% `{ok, {Kind, A, B, Body}}'.
-spec recv_frame(socket:socket(), timeout()) ->
          {ok, {byte(), non_neg_integer(), non_neg_integer(), binary()}} | {error, term()}.
recv_frame(Sock, Timeout) ->
    case socket:recv(Sock, 4 + ?HEAD, Timeout) of
        {ok, <<Len:32, Kind, A:64, B:64>>} when Len >= ?HEAD ->
            case Len - ?HEAD of
                0 -> {ok, {Kind, A, B, <<>>}};
                N -> case socket:recv(Sock, N, Timeout) of
                         {ok, Body} -> {ok, {Kind, A, B, Body}};
                         Error -> Error
                     end
            end;
        {ok, _} -> {error, bad_frame};
        Error -> Error
    end.
