# Semantic search from Elixir through :py: embed a thousand sentences in
# parallel (Task.async_stream over a pool of contexts), then answer the
# example's queries with their best hits. The model and the corpus are the
# Python modules of examples/semantic_search/ (all-MiniLM-L6-v2 on
# onnxruntime, no torch, nothing from the network).
#
#   make demo-elixir
#   # or, after `make build`:
#   elixir -pa _build/default/lib/erlang_python/ebin examples/semantic_search.exs
#
# The venv is the one `make demo-ml` makes (made here too when missing), by
# the example's Erlang module semantic_search.erl: python -m venv and pip,
# through Erlang ports.

root = Path.expand("..", __DIR__)
example = Path.join([root, "examples", "semantic_search"])
docs_count = 1000
batch = 64
k = 3

{:ok, _} = Application.ensure_all_started(:erlang_python)

# The Erlang half of the example: the venv, made once.
source = String.to_charlist(Path.join(example, "semantic_search.erl"))
{:ok, :semantic_search, beam} = :compile.file(source, [:binary, :return_errors])
{:module, :semantic_search} = :code.load_binary(:semantic_search, source, beam)
venv = :semantic_search.venv_dir(Path.join(root, "_build"))
log = fn line -> IO.puts("  $ #{line}") end
:ok = :semantic_search.ensure_venv(venv, Path.join(example, "requirements.txt"), %{log: log})

# A pool of two isolated contexts (a child OS process each); the venv and
# the example's modules are on their path (ensure_venv made them active).
{:ok, contexts} = :py_context_router.start_pool(:elixir_search, 2, :isolated)

{:ok, labelled} = :py.call(:elixir_search, "corpus", "labelled", [docs_count], %{})
{:ok, queries} = :py.eval(hd(contexts), "__import__('corpus').QUERIES")
{:ok, _warm} = :py.call(:elixir_search, "minilm", "embed_bytes", [["warm up"]], %{})

# One task per batch; each task is a process of its own, served by one of
# the pool's contexts. async_stream keeps the order, so the rows line up.
embed = fn texts ->
  {:ok, rows} = :py.call(:elixir_search, "minilm", "embed_bytes", [texts], %{})
  rows
end

{micros, matrix} =
  :timer.tc(fn ->
    labelled
    |> Enum.map(fn {_topic, text} -> text end)
    |> Enum.chunk_every(batch)
    |> Task.async_stream(embed, max_concurrency: 4, timeout: :infinity)
    |> Enum.map_join(fn {:ok, rows} -> rows end)
  end)

IO.puts(
  "#{div(byte_size(matrix), 1536)} sentences embedded in #{Float.round(micros / 1.0e6, 1)} s " <>
    "(#{round(docs_count * 1.0e6 / micros)} sentences/s)\n"
)

# Search: the matrix goes to Python as bytes; hits come back as {index, cosine}.
texts = Enum.map(queries, fn {query, _topic} -> query end)
{:ok, hits} = :py.call(:elixir_search, "minilm", "search", [{:bytes, matrix}, texts, k], %{})
docs = List.to_tuple(labelled)

for {{query, want}, query_hits} <- Enum.zip(queries, hits) do
  IO.puts(query)

  for {i, score} <- query_hits do
    {topic, text} = elem(docs, i)
    mark = if topic == want, do: " ", else: "!"
    IO.puts("  #{mark}#{:erlang.float_to_binary(score, decimals: 3)}  [#{topic}] #{text}")
  end
end

:ok = :py_context_router.stop_pool(:elixir_search)
