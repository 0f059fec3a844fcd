"""Field paths: `card.number`, `items.*.ssn`, `contacts.*` — dots between keys, `*` for every
item of a list or every value of an object, a number for one list item. Keys that contain a dot
cannot be named. A path that does not exist in a document is skipped.

A field is bound to its path with list positions written `*` (`items.*.ssn`), so reordering a list
keeps its items readable while moving a value to another key does not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from outrigger.errors import InvalidInput

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    Visit = Callable[[Any, str], Any]

WILDCARD: Final = "*"


def parse(path: str) -> tuple[str, ...]:
    segments = tuple(path.split("."))
    if not path or not all(segments):
        raise InvalidInput(f"field path {path[:80]!r} must be dot-separated names, numbers or *")
    return segments


def rewrite(node: Any, segments: Sequence[str], visit: Visit, bound: tuple[str, ...] = ()) -> Any:
    """`node` with `visit(value, bound_path)` applied at every match of the path.

    Containers on the way are copied only where something changed; `node` is never modified.
    """
    if not segments:
        return visit(node, ".".join(bound))
    head, rest = segments[0], segments[1:]
    changes: dict[Any, Any] = {}
    if isinstance(node, dict):
        keys = list(node) if head == WILDCARD else [head] if head in node else []
        for key in keys:
            new = rewrite(node[key], rest, visit, (*bound, key))
            if new is not node[key]:
                changes[key] = new
        return {**node, **changes} if changes else node
    if isinstance(node, list):
        if head == WILDCARD:
            indices: Sequence[int] = range(len(node))
        elif head.isdecimal() and int(head) < len(node):
            indices = [int(head)]
        else:
            return node
        for index in indices:
            new = rewrite(node[index], rest, visit, (*bound, WILDCARD))
            if new is not node[index]:
                changes[index] = new
        if not changes:
            return node
        copy = list(node)
        for index, new in changes.items():
            copy[index] = new
        return copy
    return node


def values(node: Any, segments: Sequence[str]) -> list[Any]:
    """The values at every match of the path."""
    found: list[Any] = []

    def collect(value: Any, _path: str) -> Any:
        found.append(value)
        return value

    rewrite(node, segments, collect)
    return found
