"""Fine-tune the sentiment task for one epoch on its embedded sample data and print the metrics.

    python examples/finetune_sentiment.py [OUTPUT_DIR]

Without OUTPUT_DIR, the model goes to a temporary directory that is deleted when the script ends.
An existing OUTPUT_DIR is replaced once the new run is complete. The run needs no network: the
sample data ships with the sentiment plugin, and the default model with ``taskforge[minilm-l6]``.
"""

import logging
import sys
import tempfile
from pathlib import Path

import taskforge

# The library installs no log handler, so show its INFO lines (labels, precision, progress) here.
logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
logging.getLogger("taskforge").setLevel(logging.INFO)

with tempfile.TemporaryDirectory() as scratch:
    output_dir = sys.argv[1] if len(sys.argv) > 1 else str(Path(scratch) / "sentiment")

    # No train_file, so the task trains on its sample data and validates on its sample split.
    # At the task's batch size of 32, one epoch of 320 examples is 10 optimizer steps. A CPU run of
    # 10 steps still predicted one class for every input, so batches of 16 give it 20 steps.
    result = taskforge.finetune(task="sentiment", epochs=1, batch_size=16, output_dir=output_dir, overwrite=True)

    validation = result.metrics["validation"]
    print(f"model saved to {result.output_dir}")
    print(f"validation accuracy {validation['accuracy']:.4f}, macro F1 {validation['f1_macro']:.4f}")
