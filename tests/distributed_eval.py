"""Evaluate a tiny classifier on 22 examples with batch size 4, in one process or under torchrun.

    python tests/distributed_eval.py MODEL_DIR
    torchrun --nproc_per_node 2 tests/distributed_eval.py MODEL_DIR

Prints, on the main process, one JSON line with the number of predictions and the accuracy.
"""

import json
import sys

import datasets
import torch
from accelerate import Accelerator
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from taskforge.evaluation import evaluate_examples
from taskforge.registry import get_task
from taskforge.task import LabelSet

model_dir = sys.argv[1]
accelerator = Accelerator(cpu=True)
task = get_task("classification")
labels = LabelSet(names=("neg", "pos"), values=("neg", "pos"))
tokenizer = AutoTokenizer.from_pretrained(model_dir)
torch.manual_seed(0)
model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2)
model = accelerator.prepare(model)

words = ["good", "bad", "great", "awful", "fine", "poor"]
examples = datasets.Dataset.from_dict({
    "text": [f"the {words[i % 6]} thing number {i}" + " and more" * (i % 5) for i in range(22)],
    "label": ["pos" if i % 3 else "neg" for i in range(22)],
})
features = task.preprocess(examples, tokenizer, 32, labels, training=False)
metrics, predictions = evaluate_examples(task, model, examples, features, labels, task.collator(tokenizer), 4,
                                         accelerator)
if accelerator.is_main_process:
    print(json.dumps({"count": len(predictions), "accuracy": metrics["accuracy"],
                      "processes": accelerator.num_processes}))
