"""Meta-features of a task before its growth search: cheap, deterministic numbers that say what the task is like.

They describe the task (classes new and seen, samples per class, input shape and pixel statistics,
scenario, position in the stream), the net that meets it (log parameters and log inference FLOPs)
and how hard the task is for that net: the accuracy of a k-nearest-neighbour classifier (k = 5) in
the current net's features, fitted on up to `PROBE_TRAIN` training samples of the task and scored on
up to `PROBE_VAL` of its validation samples (both seeded draws). The knowledge base compares tasks by
these numbers (`selfgrow.search.meta.transfer`). `task_identity` names the task itself, so the base knows which of
its searches met the same task (runs of one stream, with other seeds).
"""

from __future__ import annotations

import math
from typing import Any

import torch

FEATURES = ("task_index", "class_il", "task_il", "domain_il", "new_classes", "seen_classes", "log_train_per_class",
            "channels", "log_pixels", "input_mean", "input_std", "log_params", "log_flops", "probe_knn")
PROBE_TRAIN = 500
PROBE_VAL = 200
NEIGHBOURS = 5


def task_features(learner: Any, task: Any, seed: int = 0) -> tuple[dict[str, float], float]:
    """The meta-features of `task` for `learner`'s current net, and the FLOPs the probe spent (its forward passes)."""
    from selfgrow.nets.cost import count_params, inference_flops

    net = learner.net
    head = 0 if learner.scenario == "task" else None
    x = task.x_train
    seen = {c for t in learner.seen for c in t.class_ids}
    probe, n_probed = knn_probe(net, task, head, seed)
    features = {
        "task_index": float(task.index),
        "class_il": float(learner.scenario == "class"),
        "task_il": float(learner.scenario == "task"),
        "domain_il": float(learner.scenario == "domain"),
        "new_classes": float(len(set(task.class_ids) - seen)),
        "seen_classes": float(len(seen | set(task.class_ids))),
        "log_train_per_class": math.log(max(1, len(task.y_train)) / max(1, task.n_classes)),
        "channels": float(x.shape[1]),
        "log_pixels": math.log(float(x.shape[2] * x.shape[3])),
        "input_mean": float(x.float().mean()),
        "input_std": float(x.float().std()),
        "log_params": math.log(float(count_params(net))),
        "log_flops": math.log(float(inference_flops(net, head))),
        "probe_knn": probe,
    }
    return features, float(inference_flops(net, head)) * n_probed


def task_identity(task: Any) -> str:
    """The task's position, name and class names ("1:mnist[2,3]:2/3"): the same for every run of a stream (its
    seed draws other samples of the same classes), different for another class order or dataset."""
    return f"{task.index}:{task.name}:{'/'.join(str(name) for name in task.class_names)}"


def knn_probe(net: torch.nn.Module, task: Any, head: int | None, seed: int) -> tuple[float, int]:
    """kNN accuracy of the task's validation samples in `net`'s features (NaN without validation), and the
    number of samples passed through the net."""
    from sklearn.neighbors import KNeighborsClassifier

    from selfgrow.train.batches import to_input

    generator = torch.Generator().manual_seed(seed * 1_000_003 + task.index)
    train = torch.randperm(len(task.y_train), generator=generator)[:PROBE_TRAIN]
    val = torch.randperm(len(task.y_val), generator=generator)[:PROBE_VAL]
    if len(val) == 0 or len(train) < NEIGHBOURS:
        return float("nan"), 0
    device = next(net.parameters()).device
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            fit = net.features(to_input(task.x_train[train].to(device), task), head).flatten(1).cpu().numpy()
            score = net.features(to_input(task.x_val[val].to(device), task), head).flatten(1).cpu().numpy()
    finally:
        net.train(was_training)
    knn = KNeighborsClassifier(n_neighbors=NEIGHBOURS).fit(fit, task.y_train[train].numpy())
    return float(knn.score(score, task.y_val[val].numpy())), len(train) + len(val)
