"""Run by the data-parallel tests, alone or under torchrun (not a test module): a learner over two tiny
tasks with replay, LwF and EWC, trained with an uneven batch size; each rank saves its net and the
number of rows its net was trained on."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

from trainer_fixtures import make_net, make_tasks  # noqa: E402

from selfgrow.growth.fixed import FixedGrower  # noqa: E402
from selfgrow.retention import EWC, LwF, Replay  # noqa: E402
from selfgrow.train import Learner, Trainer  # noqa: E402
from selfgrow.train.parallel import join_torchrun_group  # noqa: E402


def main(out: str, scenario: str) -> None:
    torch.set_num_threads(1)
    group = join_torchrun_group()
    rank = 0 if group is None else group.rank
    tasks = make_tasks(2, scenario=scenario, per_class=40)
    trainer = Trainer(epochs=3, batch_size=7, optimizer="sgd", lr=0.05, device="cpu", progress=False)
    rows = [0]
    loss = Trainer._loss

    def counted(*args, **kwargs):  # the new rows each training step of this rank computes its loss on
        result = loss(*args, **kwargs)
        rows[0] += len(result[1].y)
        return result

    Trainer._loss = counted
    learner = Learner(make_net(scenario, [16]), FixedGrower(), [Replay(budget=20), LwF(), EWC()], trainer, scenario)
    for task in tasks:
        learner.learn(task)
    torch.save(learner.net.state_dict(), Path(out) / f"rank{rank}.pt")
    (Path(out) / f"rank{rank}.json").write_text(json.dumps({"trained_rows": rows[0]}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
