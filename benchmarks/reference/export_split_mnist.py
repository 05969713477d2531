"""Export selfgrow's Split-MNIST (seed 0, natural class order, normalised as the trainer does) for a reference library.

    SELFGROW_DATA=../shared/datasets .venv/bin/python benchmarks/reference/export_split_mnist.py OUT.npz
"""
import sys

import numpy as np
from selfgrow import config as C
from selfgrow.factories import build_stream
from selfgrow.retention.scenario import model_input

cfg = C.from_dict({"seed": 0, "stream": {"name": "split", "dataset": "mnist", "scenario": "class", "n_tasks": 5}})
stream = build_stream(cfg)
out = {}
for t in stream.tasks:
    out[f"xtr{t.index}"] = model_input(t.x_train, t).flatten(1).numpy()
    out[f"ytr{t.index}"] = t.global_labels(t.y_train).numpy()
    out[f"xte{t.index}"] = model_input(t.x_test, t).flatten(1).numpy()
    out[f"yte{t.index}"] = t.global_labels(t.y_test).numpy()
    print(t.index, t.class_ids, len(t.y_train), len(t.y_test))
np.savez(sys.argv[1], **out)
