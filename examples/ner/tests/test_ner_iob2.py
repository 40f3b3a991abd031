"""Entity spans of IOB2 tag sequences, checked against spans worked out by hand."""

from __future__ import annotations

import pytest

import ner_testdata  # noqa: F401  (puts taskforge_ner on sys.path)
from taskforge_ner.iob2 import Span, entity_spans, is_iob2_tag, stray_inside_tags

# Each case: tags, spans in lenient mode, spans in strict mode.
CASES = [
    (["O", "O"], [], []),
    (["B-PER", "I-PER", "O", "B-LOC"], [Span("PER", 0, 2), Span("LOC", 3, 4)], [Span("PER", 0, 2), Span("LOC", 3, 4)]),
    # Two adjacent entities of one type: B- starts the second.
    (["B-ORG", "B-ORG", "I-ORG"], [Span("ORG", 0, 1), Span("ORG", 1, 3)], [Span("ORG", 0, 1), Span("ORG", 1, 3)]),
    # An entity at the end of the sentence.
    (["O", "B-MISC", "I-MISC"], [Span("MISC", 1, 3)], [Span("MISC", 1, 3)]),
    # I- after O: lenient starts an entity, strict drops it.
    (["O", "I-PER", "I-PER", "O"], [Span("PER", 1, 3)], []),
    # I- at the start of the sentence.
    (["I-LOC", "O"], [Span("LOC", 0, 1)], []),
    # I- of another type ends the entity; lenient starts a new one there.
    (["B-PER", "I-LOC", "I-LOC"], [Span("PER", 0, 1), Span("LOC", 1, 3)], [Span("PER", 0, 1)]),
    # Strict mode drops the stray I- tags but keeps the B- entity that follows them.
    (["I-ORG", "I-ORG", "B-ORG", "I-ORG"], [Span("ORG", 0, 2), Span("ORG", 2, 4)], [Span("ORG", 2, 4)]),
    # Types may contain hyphens.
    (["B-WORK-OF-ART", "I-WORK-OF-ART"], [Span("WORK-OF-ART", 0, 2)], [Span("WORK-OF-ART", 0, 2)]),
]


@pytest.mark.parametrize(("tags", "lenient", "strict"), CASES)
def test_entity_spans_by_hand(tags, lenient, strict):
    assert entity_spans(tags) == lenient
    assert entity_spans(tags, mode="strict") == strict


def test_entity_spans_rejects_non_iob2():
    with pytest.raises(ValueError) as caught:
        entity_spans(["O", "S-PER"])

    assert "'S-PER' at position 1" in str(caught.value)


def test_is_iob2_tag():
    assert is_iob2_tag("O")
    assert is_iob2_tag("B-PER")
    assert is_iob2_tag("I-MISC")
    assert not is_iob2_tag("B-")
    assert not is_iob2_tag("PER")
    assert not is_iob2_tag("E-PER")
    assert not is_iob2_tag("o")


def test_stray_inside_tags_counted():
    # Stray: index 0 (sentence start), 3 (after O) and 5 (after B-PER, another type).
    assert stray_inside_tags(["I-PER", "I-PER", "O", "I-LOC", "B-PER", "I-ORG"]) == 3
    assert stray_inside_tags(["B-PER", "I-PER", "O", "B-LOC"]) == 0
