"""Classify a few sentences with a sentiment model saved by taskforge.

    python examples/predict.py [MODEL_DIR]

MODEL_DIR is the output directory of a sentiment run, for example the one that
``python examples/finetune_sentiment.py outputs/sentiment-example`` writes. Without MODEL_DIR,
the script first fine-tunes the sentiment task for one epoch into a temporary directory.
The sample data is small (320 sentences), so after one epoch expect scores near 0.5 and some
wrong labels. ``outputs/sentiment-demo``, which ``bash scripts/demo.sh`` trains for three epochs,
scores higher.
"""

import sys
import tempfile
from pathlib import Path

import taskforge

SENTENCES = [
    "The battery lasts all day and the screen is gorgeous.",
    "It broke after two days and support never answered.",
    "Checkout was quick and the parcel came a day early.",
]

with tempfile.TemporaryDirectory() as scratch:
    if len(sys.argv) > 1:
        model_dir = Path(sys.argv[1])
    else:
        # The same short run as examples/finetune_sentiment.py: one epoch in batches of 16.
        result = taskforge.finetune(task="sentiment", epochs=1, batch_size=16, output_dir=str(Path(scratch) / "sentiment"))
        model_dir = result.output_dir

    predictor = taskforge.load(model_dir)
    predictions = predictor.predict(SENTENCES, batch_size=8)

    # Each prediction contains the label name, its probability, and the probability of every label.
    for sentence, prediction in zip(SENTENCES, predictions):
        print(f"{prediction['label']:<8}  {prediction['score']:.3f}  {sentence}")
