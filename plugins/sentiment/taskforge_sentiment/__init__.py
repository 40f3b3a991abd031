"""Sentiment analysis as a taskforge task plugin, built on the classification task.

Labels 0 and 1 in the data are named ``negative`` and ``positive``; labels written as names are
used as they are. ``--label-names`` overrides the names, in the sorted order of the label values.
With no data flags, the task trains on its embedded sample of 320 short reviews and validates on 80.
"""

from taskforge_sentiment.task import SentimentTask

__all__ = ["SentimentTask"]
