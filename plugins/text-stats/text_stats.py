"""Text statistics: characters, words, lines, distinct words and the most frequent words.

A word is a run of letters, digits or underscores, with inner apostrophes or hyphens
("don't", "state-of-the-art"). Lines are counted as an editor shows them: a text without a
final newline still has its last line; the empty text has none.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

WORD = re.compile(r"\w+(?:['\u2019-]\w+)*")


def stats(payload: dict[str, Any]) -> dict[str, Any]:
    text: str = payload["text"]
    top: int = payload.get("top", 10)
    words = WORD.findall(text if payload.get("case_sensitive", False) else text.casefold())
    counts = Counter(words)  # in order of first appearance, which most_common keeps for ties
    return {
        "characters": len(text),
        "words": len(words),
        "lines": len(text.splitlines()),
        "distinct_words": len(counts),
        "top_words": [{"word": word, "count": n} for word, n in counts.most_common(top)],
    }
