"""A deterministic corpus for the semantic search example, made offline.

Sentences are built from templates over a few clear topics, so that a query
about one topic has meaningful hits and a search can be checked: every
sentence is labelled with its topic. The same arguments always give the
same sentences in the same order, on every Python version (one seeded
``random.Random``, no hashing of strings).
"""

from __future__ import annotations

import random

__all__ = ["QUERIES", "TOPICS", "documents", "labelled", "queries"]

# topic -> (subjects, actions, objects, settings): a sentence is one of each.
TOPICS: dict[str, tuple[list[str], list[str], list[str], list[str]]] = {
    "cooking": (
        ["The chef", "My grandmother", "A home cook", "The baker", "Our neighbour"],
        ["slowly simmers", "kneads and bakes", "seasons and roasts", "chops and fries",
         "whisks together"],
        ["a pot of tomato sauce", "fresh sourdough bread", "garlic and onions",
         "a tray of vegetables", "eggs, butter and flour"],
        ["for the family dinner", "in a hot oven", "before adding the spices",
         "in the busy restaurant kitchen"],
    ),
    "astronomy": (
        ["The telescope", "An astronomer", "The space probe", "A team of astrophysicists",
         "The observatory"],
        ["observed", "measured the light of", "discovered", "photographed",
         "tracked the orbit of"],
        ["a distant galaxy", "a new exoplanet", "the rings of Saturn",
         "a supernova explosion", "a comet near the Sun"],
        ["on a clear night", "billions of light years away", "with an infrared camera",
         "from high in the mountains"],
    ),
    "football": (
        ["The striker", "The goalkeeper", "The home team", "The young midfielder",
         "The coach"],
        ["scored", "celebrated", "defended against", "was booked after",
         "trained hard for"],
        ["a late penalty", "a header from a corner kick", "the winning goal",
         "a stunning free kick", "a goal on the counter-attack"],
        ["in front of a packed stadium", "in the second half", "during extra time",
         "before the transfer window closed"],
    ),
    "finance": (
        ["The central bank", "Investors", "The stock market", "A hedge fund",
         "The finance minister"],
        ["raised", "worried about", "reacted to", "bet heavily on", "cut"],
        ["interest rates", "rising inflation", "quarterly earnings", "government bonds",
         "the exchange rate"],
        ["after the jobs report", "as share prices fell", "amid fears of a recession",
         "at the end of the fiscal year"],
    ),
    "medicine": (
        ["The doctor", "A nurse", "The surgeon", "The hospital", "A clinical trial"],
        ["treated", "diagnosed", "vaccinated", "tested a new drug on",
         "monitored the recovery of"],
        ["patients with diabetes", "a child with a fever", "people with high blood pressure",
         "an elderly man after heart surgery", "volunteers with chronic pain"],
        ["in the emergency room", "with fewer side effects", "over several weeks",
         "before prescribing antibiotics"],
    ),
    "programming": (
        ["The developer", "Our engineering team", "The compiler", "A junior programmer",
         "The open-source maintainer"],
        ["refactored", "fixed a bug in", "wrote unit tests for", "optimised",
         "reviewed a pull request for"],
        ["the database query layer", "a memory leak in the server", "the Python library",
         "the REST API", "a concurrency problem in the scheduler"],
        ["before the release", "using a debugger", "to make the build faster",
         "after the tests failed"],
    ),
    "gardening": (
        ["The gardener", "My uncle", "A volunteer", "The farmer", "Our community garden"],
        ["planted", "watered", "pruned", "harvested", "composted"],
        ["rows of tomatoes", "the rose bushes", "seedlings in the greenhouse",
         "tulip bulbs", "apple trees in the orchard"],
        ["in early spring", "after the last frost", "in rich soil",
         "before the summer heat"],
    ),
    "travel": (
        ["The train", "Our flight", "A backpacker", "The tourists", "The ferry"],
        ["departed for", "was delayed on the way to", "arrived late in",
         "booked a hotel in", "explored the old town of"],
        ["Lisbon", "Kyoto", "the Swiss Alps", "a small island in Greece",
         "the coast of Norway"],
        ["with a single suitcase", "during the holiday season", "on a rainy morning",
         "after a long connection at the airport"],
    ),
}

#: Queries of the example, each with the topic its hits should have.
QUERIES: list[tuple[str, str]] = [
    ("How do I bake bread at home?", "cooking"),
    ("Scientists found a planet orbiting another star", "astronomy"),
    ("Who won the match with a goal at the last minute?", "football"),
    ("Will the bank make borrowing more expensive?", "finance"),
    ("What is the treatment for heart disease?", "medicine"),
    ("How to find and fix software bugs", "programming"),
    ("When should I plant vegetables in my garden?", "gardening"),
    ("Cheap ways to travel around Europe by rail", "travel"),
]


def labelled(n: int = 3000, seed: int = 19) -> list[tuple[str, str]]:
    """``n`` distinct ``(topic, sentence)`` pairs, topics interleaved, in a fixed order."""
    per_topic = -(-n // len(TOPICS))
    pools: list[list[tuple[str, str]]] = []
    rng = random.Random(seed)
    for topic, (subjects, actions, objects, settings) in TOPICS.items():
        every = [
            (topic, f"{s} {a} {o} {w}.")
            for s in subjects
            for a in actions
            for o in objects
            for w in settings
        ]
        if per_topic > len(every):
            raise ValueError(f"at most {len(every) * len(TOPICS)} sentences, asked for {n}")
        pools.append(rng.sample(every, per_topic))
    mixed = [pair for group in zip(*pools, strict=True) for pair in group]
    rng.shuffle(mixed)
    return mixed[:n]


def documents(n: int = 3000, seed: int = 19) -> list[str]:
    """The sentences of :func:`labelled`."""
    return [sentence for _, sentence in labelled(n, seed)]


def queries() -> list[str]:
    """The query texts of :data:`QUERIES`."""
    return [query for query, _ in QUERIES]
