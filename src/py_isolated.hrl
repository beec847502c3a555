%% Copyright 2026 the erlang_python developers. Apache-2.0.
%% What py_isolated and py_isolated_caller share: a request in flight, as
%% the context's ETS table keeps it (keyed by id), and the frame kinds.

%% A request: its caller (`from', and `ref' for its reply), `tag' (`sync'
%% for a caller that waits, `none' for a cast, else the async tag), the
%% process whose namespace it runs in (`owner'), its payload (`bin', kept
%% for a replay on the next child), the caller's number in the child `n'
%% (0 until the context process sends it) and the child generation `gen'
%% it was sent to (0: not sent yet); `keep': the payload of a request no
%% caller waits for, kept so that the NIF resources it names (shared dicts,
%% channels) live until the child is done with it.
-record(ireq, {id :: pos_integer(), from :: pid(), ref :: reference(),
               tag :: atom(), owner :: pid(), bin :: binary(),
               n = 0 :: non_neg_integer(), gen = 0 :: non_neg_integer(),
               keep :: term()}).

%% A frame's header after its 4-byte length: Kind:8, A:64, B:64.
-define(HEAD, 17).

%% Frames to the child.
-define(REQ, 1).
-define(CB_REPLY, 2).
-define(STOP, 3).
-define(INTERRUPT, 4).
-define(DOWN, 5).
-define(CREDIT, 6).
-define(PUBLISH, 7).
-define(PID, 9).
-define(REQ_SYNC, 10).
-define(RESEND, 11).
-define(ASYNC_CANCEL, 12).
%% Frames from the child.
-define(REPLY, 1).
-define(CALLBACK, 2).
-define(SEND, 3).
-define(STREAM, 4).
-define(DROPPED, 7).
-define(DONE, 9).
