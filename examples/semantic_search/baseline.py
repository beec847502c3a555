"""Plain-Python baseline of the semantic search example: sentences/s in one process.

Embeds the first N sentences of the example's corpus in batches, on one
thread, as one context does, and prints one JSON object:
``{"sentences": N, "batch": B, "seconds": S}``. Run with the venv's Python:

    python baseline.py [N] [BATCH]
"""

from __future__ import annotations

import json
import sys
import time

import corpus
import minilm


def main(argv: list[str]) -> None:
    """Time the embedding of ``argv[1]`` sentences (1024) in batches of ``argv[2]`` (64)."""
    n = int(argv[1]) if len(argv) > 1 else 1024
    batch = int(argv[2]) if len(argv) > 2 else 64
    texts = corpus.documents()[:n]
    model = minilm.load(threads=1)
    model.embed(texts[:batch])  # the first run allocates: leave it out, as the contexts do
    t0 = time.perf_counter()
    model.embed(texts, batch_size=batch)
    seconds = time.perf_counter() - t0
    print(json.dumps({"sentences": len(texts), "batch": batch, "seconds": seconds}))


if __name__ == "__main__":
    main(sys.argv)
