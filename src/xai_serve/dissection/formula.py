"""Concept formulas: leaves (concept ids) combined with OR, AND and AND NOT
(docs/methods.md#compexp-algorithm).

A formula is a nested tuple: ``("leaf", c)`` or ``(op, left, right)`` with ``op`` in
``OPS = ("OR", "AND", "AND NOT")``; the right operand of a search step is always a leaf. Its
*length* follows the compositional explanations code (Mu & Andreas): a leaf counts 1, ``NOT f``
counts ``1 + len(f)``, a binary node the sum of its operands (so ``A AND NOT B`` has length 3) -- this
length drives the complexity penalty; the number of *primitives* (leaves) is what ``max_length`` bounds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

OPS = ("OR", "AND", "AND NOT")
NONE = "NONE"  # the formula reported for a unit that overlaps no concept

Formula: TypeAlias = tuple[Any, ...]  # ("leaf", concept) | (op, left, right)


def leaf(concept: int) -> Formula:
    return ("leaf", int(concept))


def combine(op: str, left: Formula, concept: int) -> Formula:
    return (op, left, leaf(concept))


def length(f: Formula) -> int:
    """The compositional explanations code's formula length (leaves plus NOTs)."""
    if f[0] == "leaf":
        return 1
    op, left, right = f
    return length(left) + length(right) + (1 if op == "AND NOT" else 0)


def primitives(f: Formula) -> int:
    """Number of leaves."""
    if f[0] == "leaf":
        return 1
    return primitives(f[1]) + primitives(f[2])


def leaves(f: Formula) -> list[int]:
    if f[0] == "leaf":
        return [int(f[1])]
    return leaves(f[1]) + leaves(f[2])


def to_string(f: Formula, names: Sequence[str], *, outer: bool = True) -> str:
    """``(A OR B) AND NOT C``: every binary sub-formula parenthesised except the outermost."""
    if f[0] == "leaf":
        return str(names[f[1]])
    op, left, right = f
    text = f"{to_string(left, names, outer=False)} {op} {to_string(right, names, outer=False)}"
    return text if outer else f"({text})"


def parse(text: str, names: Sequence[str]) -> Formula:
    """Inverse of :func:`to_string` (outer parentheses optional). Concept names may not contain
    parentheses or the operator words surrounded by spaces."""
    from xai_serve.errors import InvalidArgumentError

    index = {n: i for i, n in enumerate(names)}
    s = text.strip()

    def split_top(s: str) -> Formula:
        s = s.strip()
        depth = 0
        # find the last top-level operator (operators are left-associative)
        best: tuple[int, str] | None = None
        i = 0
        while i < len(s):
            ch = s[i]
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
            elif depth == 0:
                for op in ("AND NOT", "OR", "AND"):
                    token = f" {op} "
                    if s.startswith(token, i):
                        best = (i, op)
                        i += len(token) - 1
                        break
            i += 1
        if best is None:
            if s.startswith("(") and s.endswith(")"):
                return split_top(s[1:-1])
            if s not in index:
                raise InvalidArgumentError(f"unknown concept {s!r} in formula {text!r}")
            return leaf(index[s])
        pos, op = best
        return (op, split_top(s[:pos]), split_top(s[pos + len(op) + 2 :]))

    return split_top(s)
