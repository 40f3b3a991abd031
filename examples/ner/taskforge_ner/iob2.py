"""Entity spans of IOB2 tag sequences, as conlleval and seqeval's default mode decode them.

``B-X`` starts an entity of type X and ``I-X`` continues one. An entity ends before ``O``, before
any ``B-``, and before an ``I-`` tag of another type. Two schemes differ on an ``I-X`` that follows
``O`` or a tag of another type, which IOB2 does not allow:

- ``lenient`` (conlleval, and seqeval without ``mode="strict"``) starts a new entity there, so IOB1
  data and a model's stray ``I-`` tags still yield entities;
- ``strict`` (seqeval's ``mode="strict"`` with the IOB2 scheme) drops the tags up to the next
  ``B-`` or ``O``, because an entity must start with ``B-``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal, NamedTuple

Mode = Literal["lenient", "strict"]

TAG_PATTERN = re.compile(r"^(O|[BI]-.+)$")


class Span(NamedTuple):
    """One entity: its type and its words ``start`` to ``end``, end exclusive."""

    type: str
    start: int
    end: int


def is_iob2_tag(tag: str) -> bool:
    """Return whether ``tag`` is ``O``, ``B-X`` or ``I-X`` for a non-empty type X."""
    return TAG_PATTERN.match(tag) is not None


def entity_spans(tags: Sequence[str], mode: Mode = "lenient") -> list[Span]:
    """Return the entities of one tag sequence, in order.

    Raises ValueError for a tag that is neither ``O`` nor ``B-``/``I-`` followed by a type.
    """
    spans: list[Span] = []
    current_type: str | None = None
    start = 0
    for position, tag in enumerate(tags):
        if not is_iob2_tag(tag):
            raise ValueError(f"tag {tag!r} at position {position} is not an IOB2 tag (O, B-TYPE or I-TYPE)")
        prefix, entity_type = (tag[0], tag[2:]) if tag != "O" else ("O", None)

        continues = prefix == "I" and entity_type == current_type
        if continues:
            continue
        if current_type is not None:
            spans.append(Span(current_type, start, position))
            current_type = None
        if prefix == "B" or (prefix == "I" and mode == "lenient"):
            current_type, start = entity_type, position
    if current_type is not None:
        spans.append(Span(current_type, start, len(tags)))
    return spans


def stray_inside_tags(tags: Sequence[str]) -> int:
    """Count ``I-X`` tags that follow ``O``, the start of the sequence, or a tag of another type."""
    count = 0
    previous = "O"
    for tag in tags:
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            count += 1
        previous = tag
    return count
