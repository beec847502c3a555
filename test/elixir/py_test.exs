# Copyright 2026 the erlang_python developers. Apache-2.0.
#
# erlang_python from Elixir: calls with string names, nil, maps with string
# keys, errors, timeouts, and Python calling an Elixir function; and every
# ```elixir block of docs/elixir.md, run in order. Run by `make test`:
#
#   elixir -pa _build/default/lib/erlang_python/ebin test/elixir/py_test.exs

ExUnit.start(trace: false)
# The Python errors these tests cause are logged at debug level.
Logger.configure(level: :warning)

defmodule PyTest do
  use ExUnit.Case, async: false

  setup_all do
    {:ok, _} = Application.ensure_all_started(:erlang_python)
    :ok
  end

  describe "calls" do
    test "module and function names may be strings, atoms or charlists" do
      assert {:ok, 4.0} = :py.call("math", "sqrt", [16])
      assert {:ok, 4.0} = :py.call(:math, :sqrt, [16])
      assert {:ok, 4.0} = :py.call('math', 'sqrt', [16])
      assert {:ok, 2} = :py.call("builtins", "len", [["a", "b"]])
      assert {:ok, "a/b"} = :py.call("os.path", "join", ["a", "b"])
      assert {:ok, "1.5"} = :py.call(<<"decimal">>, "Decimal", ["1.5"]) |> then(fn {:ok, d} -> :py.call("builtins", "str", [d]) end)
    end

    test "keyword arguments are a map with string or atom keys" do
      assert {:ok, "[1,2]"} = :py.call("json", "dumps", [[1, 2]], %{"separators" => {",", ":"}})
      assert {:ok, "{\"a\": 2, \"b\": 1}"} = :py.call("json", "dumps", [%{"b" => 1, "a" => 2}], %{sort_keys: true})
    end

    test "exec defines functions in the process's namespace; __main__ names it" do
      :ok = :py.exec("def add(a, b=10):\n    return a + b\n")
      assert {:ok, 11} = :py.call("__main__", "add", [1])
      assert {:ok, 3} = :py.call("__main__", "add", [1], %{"b" => 2})
      parent = self()
      spawn(fn -> send(parent, {:other, :py.eval("add(1)")}) end)
      assert_receive {:other, {:error, {:NameError, _}}}, 5_000
    end
  end

  describe "values" do
    test "nil is None, and None comes back as :none" do
      assert {:ok, true} = :py.eval("x is None", %{x: nil})
      assert {:ok, :none} = :py.eval("None")
      assert {:ok, :none} = :py.call("builtins", "print", [], %{"end" => ""})
      assert {:ok, [true, true]} = :py.eval("[v is None for v in l]", %{l: [nil, :none]})
    end

    test "maps with string keys go both ways" do
      map = %{"name" => "José", "langs" => ["elixir", "python"], "n" => 3}
      assert {:ok, ^map} = :py.eval("m", %{m: map})
      assert {:ok, "José"} = :py.eval("m['name']", %{"m" => map})
      assert {:ok, %{"a" => 1, "b" => %{"c" => [1, 2]}}} = :py.eval("{'a': 1, 'b': {'c': [1, 2]}}")
      assert {:ok, "{\"k\": \"v\"}"} = :py.call("json", "dumps", [%{"k" => "v"}])
      assert {:ok, %{"k" => "v"}} = :py.call("json", "loads", ["{\"k\": \"v\"}"])
    end

    test "atoms, keyword lists, charlists, structs and binaries" do
      assert {:ok, {:hello, true}} = :py.eval("(a, isinstance(a, str))", %{a: :hello})
      assert {:ok, [a: 1, b: 2]} = :py.eval("k", %{k: [a: 1, b: 2]})
      assert {:ok, [97, 98]} = :py.eval("c", %{c: 'ab'})
      uri = URI.parse("https://example.com/x")
      # a struct comes back as the same struct, its nil fields as :none
      assert {:ok, %URI{host: "example.com", port: 443, path: "/x", query: :none}} =
               :py.eval("u", %{u: uri})
      assert {:ok, "example.com"} = :py.eval("u['host']", %{u: uri})
      assert {:ok, <<255, 0>>} = :py.eval("b", %{b: <<255, 0>>})
      assert {:ok, true} = :py.eval("isinstance(b, bytes)", %{b: {:bytes, "abc"}})
      assert {:ok, 1_267_650_600_228_229_401_496_703_205_376} = :py.eval("2 ** 100")
    end
  end

  describe "errors" do
    test "a Python exception is {:error, {name, charlist}}" do
      assert {:error, {:ZeroDivisionError, 'division by zero'}} = :py.eval("1/0")
      assert {:error, {:ModuleNotFoundError, msg}} = :py.call("no_such_module", "f", [])
      assert to_string(msg) =~ "no_such_module"
      assert {:error, {:AttributeError, _}} = :py.call("math", "no_such_function", [])
      assert :py.last_traceback() =~ "AttributeError"
    end

    test "bad arguments raise" do
      # error({badarg, What}) in Erlang is an ArgumentError in Elixir
      assert_raise ArgumentError, ~r/kwargs/, fn -> :py.call("math", "sqrt", [16], [not: :a_map]) end
      assert_raise ArgumentError, fn -> :py.eval(42) end
    end
  end

  describe "timeouts" do
    test "a timeout interrupts Python and the context carries on" do
      assert {:error, :timeout} = :py.eval("sum(i * i for i in range(10**9))", %{}, 100)
      assert {:error, :timeout} = :py.call("time", "sleep", [10], %{}, 100)
      assert {:error, :timeout} = :py.exec("while True: pass", %{timeout: 100})
      assert {:ok, 2} = :py.eval("1 + 1")
    end
  end

  describe "callbacks into Elixir" do
    test "a registered anonymous function" do
      :ok = :py.register_function(:ex_join, fn [a, b] -> a <> " " <> b end)
      assert {:ok, "hello world"} = :py.eval("__import__('erlang').ex_join('hello', 'world')")
      assert {:ok, "a b"} = :py.eval("__import__('erlang').call('ex_join', 'a', 'b')")
      :ok = :py.unregister_function(:ex_join)
      assert {:error, {:AttributeError, _}} = :py.eval("__import__('erlang').ex_join('a', 'b')")
    end

    test "a named function, called with Elixir data" do
      defmodule Stats do
        def mean([values]), do: Enum.sum(values) / length(values)
      end

      :ok = :py.register_function("ex_mean", Stats, :mean)
      assert {:ok, 2.5} = :py.eval("__import__('erlang').ex_mean([1, 2, 3, 4])")
    end

    test "the callback may call Python again, and its errors reach Python" do
      :ok = :py.register_function(:ex_twice, fn [x] -> elem(:py.eval("x * 2", %{x: x}), 1) end)
      :ok = :py.register_function(:ex_boom, fn _ -> raise "boom" end)
      :ok = :py.exec("""
      import erlang
      def guarded():
          try:
              erlang.ex_boom()
          except erlang.ErlangError as e:
              return ('caught', e.reason['message'])
      """)
      assert {:ok, 42} = :py.eval("__import__('erlang').ex_twice(21)")
      assert {:ok, {"caught", "boom"}} = :py.call("__main__", "guarded", [])
      assert {:error, {:ErlangError, text}} = :py.eval("__import__('erlang').ex_boom()")
      assert to_string(text) =~ "boom"
    end

    test "a callback slower than the call's timeout" do
      :ok = :py.register_function(:ex_slow, fn _ -> Process.sleep(5_000) end)
      assert {:error, :timeout} = :py.call("erlang", "ex_slow", [], %{}, 100)
      assert {:ok, 1} = :py.eval("1")
    end
  end

  describe "docs/elixir.md" do
    test "every elixir block runs, in order" do
      path = Path.expand("../../docs/elixir.md", __DIR__)
      blocks = elixir_blocks(File.read!(path))
      assert length(blocks) > 5

      Enum.reduce(blocks, [], fn {line, code}, binding ->
        try do
          {_, binding} = Code.eval_string(code, binding, file: path, line: line)
          binding
        rescue
          e -> flunk("docs/elixir.md:#{line}: #{Exception.format(:error, e, __STACKTRACE__)}")
        end
      end)
    end
  end

  defp elixir_blocks(text) do
    text
    |> String.split("\n")
    |> Enum.with_index(1)
    |> Enum.reduce({nil, []}, fn
      {"```elixir" <> _, n}, {nil, acc} -> {{n + 1, []}, acc}
      {"```" <> _, _}, {{start, lines}, acc} -> {nil, [{start, lines |> Enum.reverse() |> Enum.join("\n")} | acc]}
      {line, _}, {{start, lines}, acc} -> {{start, [line | lines]}, acc}
      _, state -> state
    end)
    |> elem(1)
    |> Enum.reverse()
  end
end
