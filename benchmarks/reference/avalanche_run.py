"""Avalanche 0.6.0's GEM, AGEM, Replay or ICaRL on selfgrow's exported Split-MNIST (class- or task-IL), one seed: a measuring tool.

Runs in Avalanche's own virtual environment (../shared/reference/avalanche/README.md, plus `pip install
quadprog` for GEM), never in selfgrow's:

    /tmp/av/bin/python benchmarks/reference/avalanche_run.py NPZ gem|agem|replay|icarl class|task SEED

MLP 784-400-400 as selfgrow's `mlp-small`, Adam 1e-3, batch 128, 2 epochs per task, the optimiser reset
per task; GEM / AGEM keep 100 memory samples per experience, Replay a 500-sample buffer (Avalanche's
default storage, balanced over experiences, replay batch = training batch), ICaRL (class-IL only) a
500-exemplar fixed memory, the trunk as feature extractor and a 10-way linear classifier for training
(its nearest-class-mean classifier at test time); prints the final accuracy of each task and their mean.
"""
import sys, time
sys.path.insert(0, "/work/shared/reference/avalanche")
import tvshim  # noqa: F401  (before anything imports torchvision)
import numpy as np, torch
from torch.utils.data import TensorDataset
from avalanche.benchmarks.scenarios.deprecated.generators import nc_benchmark
from avalanche.models import IncrementalClassifier, MultiHeadClassifier, MultiTaskModule
from avalanche.training import GEM, AGEM, ICaRL, Naive
from avalanche.training.plugins import ReplayPlugin
from avalanche.training.plugins import EvaluationPlugin

npz, method, scenario, seed = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
torch.set_num_threads(2)
torch.manual_seed(seed); np.random.seed(seed)
import random; random.seed(seed)
d = np.load(npz)
cat = lambda k: np.concatenate([d[f"{k}{t}"] for t in range(5)])
train = TensorDataset(torch.tensor(cat("xtr")), torch.tensor(cat("ytr")).long())
test = TensorDataset(torch.tensor(cat("xte")), torch.tensor(cat("yte")).long())
bench = nc_benchmark(train, test, n_experiences=5, task_labels=(scenario == "task"), seed=seed,
                     fixed_class_order=list(range(10)), class_ids_from_zero_in_each_exp=(scenario == "task"))

class MLP(MultiTaskModule):
    def __init__(self):
        super().__init__()
        self.trunk = torch.nn.Sequential(torch.nn.Linear(784, 400), torch.nn.ReLU(), torch.nn.Linear(400, 400), torch.nn.ReLU())
        self.head = MultiHeadClassifier(400, 2) if scenario == "task" else IncrementalClassifier(400, 2)
    def forward(self, x, task_labels=None):
        h = self.trunk(x)
        return self.head(h, task_labels) if scenario == "task" else self.head(h)
    def forward_single_task(self, x, task_label):
        return self.head(self.trunk(x), task_label) if scenario == "task" else self.head(self.trunk(x))

model = MLP()
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
common = dict(train_mb_size=128, train_epochs=2, eval_mb_size=1000, device="cpu",
              evaluator=EvaluationPlugin(loggers=[]))
if method == "gem":
    strategy = GEM(model, opt, torch.nn.CrossEntropyLoss(), patterns_per_exp=100, memory_strength=0.5, **common)
elif method == "agem":
    strategy = AGEM(model, opt, torch.nn.CrossEntropyLoss(), patterns_per_exp=100, sample_size=256, **common)
elif method == "replay":
    strategy = Naive(model, opt, torch.nn.CrossEntropyLoss(), plugins=[ReplayPlugin(mem_size=500)], **common)
else:  # icarl: its own model, trunk + classifier, nearest class mean in eval mode
    strategy = ICaRL(feature_extractor=model.trunk, classifier=torch.nn.Linear(400, 10), optimizer=None,
                     memory_size=500, buffer_transform=None, fixed_memory=True, **common)
    opt = torch.optim.Adam(strategy.model.parameters(), lr=1e-3)
    strategy.optimizer = opt
    model = strategy.model
start = time.time()
for exp in bench.train_stream:
    strategy.train(exp, reset_optimizer_state=True)
accs = []
model.eval()
with torch.no_grad():
    for t, exp in enumerate(bench.test_stream):
        x = torch.tensor(d[f"xte{t}"]); y = torch.tensor(d[f"yte{t}"]).long()
        if scenario == "task":
            out = model(x, torch.full((len(y),), t)); y = y - 2 * t
        elif method == "icarl":
            out = model(x)  # TrainEvalModel in eval mode: the nearest-class-mean scores
        else:
            out = model(x)
        accs.append(float((out.argmax(1) == y).float().mean()))
print(f"RESULT {method} {scenario} seed {seed}: avg {np.mean(accs):.4f} per task {[round(a, 4) for a in accs]} {time.time() - start:.0f}s")
