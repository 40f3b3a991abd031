#!/usr/bin/env bash
# Kill an SST-2 fine-tuning run with SIGKILL mid-epoch, resume it with --resume auto, and compare
# its dev accuracy and weights with an uninterrupted run of the same command.
#
#   bash benchmarks/resume_sst2.sh ../shared/data/sst2 /tmp/resume-check [ROWS]
set -euo pipefail
data=${1:?usage: resume_sst2.sh SST2_DIR WORK_DIR [ROWS]}
work=${2:?usage: resume_sst2.sh SST2_DIR WORK_DIR [ROWS]}
rows=${3:-4000}
python=${PYTHON:-python}
rm -rf "$work" && mkdir -p "$work"

flags=(--task sentiment --train-file "$data/train.tsv" --validation-file "$data/dev.tsv" --text-column sentence
       --max-train-samples "$rows" --epochs 1 --seed 0 --save-steps 25 --logging-steps 25)

"$python" -m taskforge --quiet finetune "${flags[@]}" --output-dir "$work/straight" >/dev/null

"$python" -m taskforge --quiet finetune "${flags[@]}" --output-dir "$work/killed" >/dev/null &
pid=$!
# Kill after the checkpoint of step 75 exists: mid-epoch, with steps still to run.
until [ -d "$work/killed.partial/checkpoints/step-000075" ]; do sleep 0.2; done
kill -9 "$pid"; wait "$pid" || true
echo "killed at: $(ls "$work/killed.partial/checkpoints")"

"$python" -m taskforge --quiet finetune "${flags[@]}" --output-dir "$work/killed" --resume auto >/dev/null

"$python" - "$work" <<'PY'
import json, sys
from pathlib import Path
from safetensors.torch import load_file
work = Path(sys.argv[1])
straight, resumed = (load_file(str(work / name / "model.safetensors")) for name in ("straight", "killed"))
difference = max(float((straight[k].float() - resumed[k].float()).abs().max()) for k in straight)
accuracy = {name: json.loads((work / name / "metrics.json").read_text())["validation"]["accuracy"]
            for name in ("straight", "killed")}
tails = {name: (work / name / "metrics.jsonl").read_text().splitlines()[-3:] for name in ("straight", "killed")}
print(json.dumps({"dev_accuracy": accuracy, "max_weight_difference": difference,
                  "metrics_jsonl_tail_equal": tails["straight"] == tails["killed"]}))
PY
