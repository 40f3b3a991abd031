"""Named-entity recognition as a taskforge task plugin, and the worked example of the plugin guide.

The task reads CoNLL-style files: one token per line, the IOB2 tag in the last column, and a blank
line between sentences. It trains a token-classification head and scores entities by precision,
recall and F1. Its predictions are entities with character offsets in the input text. With no data
flags, it trains on an embedded sample of 64 sentences and validates on 16.
"""

from taskforge_ner.task import NerOptions, NerTask

__all__ = ["NerOptions", "NerTask"]
