"""Firefly's functional neighbourhood: an over-grown net whose candidate neurons are switched on by ε-gates.

A `Neighbourhood` holds a real net grown by the function-preserving operators (split copies,
unlocked copies, ε-gated brand-new units, identity layers) and, on top of it, the trainable
candidate variables of Wu et al. 2020 (section 2.2): per candidate a gate ε_i and a direction.
Its forward pass is `functional_call` of that net with effective parameters

- perturbations (split / unlocked copy / new-layer unit): rows of the unit's incoming weights
  (every producer parameter of its width group) moved by `ε_i δ_i / |δ_i|`, and for a split
  the mirror copy by `-ε_i δ_i / |δ_i|` (the paper's ½σ(θ+εδ) + ½σ(θ-εδ), the outgoing weights
  being halved by the split operator);
- brand-new units: the ε-gate parameter of the gated units, and their incoming rows and
  outgoing columns free to train.

`descend` is step one (a few gradient steps on gates and candidate weights, the gates projected
on [-ε, ε]); `taylor_scores` is step two's integrated gradient. Everything runs in eval mode
(BatchNorm statistics and dropout fixed), as in the authors' code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.func import functional_call

from selfgrow.growth.firefly.batches import Step
from selfgrow.nets.base import GrowableNet
from selfgrow.nets.groups import Port
from selfgrow.retention.base import Retention
from selfgrow.nets.ops.widen import channels


@dataclass
class Perturbation:
    """ε-gated moves of the incoming weights of `units` (and opposite moves of `mirror`) of one width group.

    `kind` is "split", "copy" or "layer"; `origin` names the candidates in logs (the width group,
    or the depth point of a new layer); `sources[k]` is the unit of the current net candidate k
    grows from; `directions[p]` holds one row per candidate for producer parameter `ports[p]`.
    """

    kind: str
    origin: str
    group: str
    units: torch.Tensor
    mirror: torch.Tensor | None
    sources: list[int]
    ports: list[Port]
    directions: list[torch.Tensor]
    gate: torch.Tensor

    def steps(self, gate: torch.Tensor, base: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The additive change of each touched parameter for gate values `gate` (unit-norm directions)."""
        norm = torch.sqrt(sum(d.flatten(1).pow(2).sum(1) for d in self.directions)).clamp_min(1e-12)
        scale = gate / norm
        out = {}
        for port, direction in zip(self.ports, self.directions):
            step = direction * scale.view(-1, *[1] * (direction.dim() - 1))
            change = scatter_rows(base[port.name], port, self.units, step)
            if self.mirror is not None:
                change = change + scatter_rows(base[port.name], port, self.mirror, -step)
            out[port.name] = change
        return out


@dataclass
class NewUnits:
    """`count` ε-gated brand-new units, the trailing ones of width group `group` from unit `start`."""

    group: str
    start: int
    count: int
    gate_param: str
    gate: torch.Tensor


@dataclass
class Scores:
    """Step two's result per candidate: integrated-gradient slope `score`, trained gate, and the losses at
    all gates 0 (the current net) and at the trained gates (the over-grown net)."""

    score: torch.Tensor
    gate: torch.Tensor
    loss_before: float
    loss_after: float


def scatter_rows(like: torch.Tensor, port: Port, units: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """A tensor shaped like `like`, zero except `values` (one row per unit) at channels `units` of `port`."""
    view = channels({port.name: like}, port)
    rows = values.new_zeros(view.shape).index_add(0, units.to(values.device), values)
    return rows.movedim(0, port.dim).flatten(port.dim, port.dim + 1)


def parameter_ports(net: GrowableNet, ports: list[Port]) -> list[Port]:
    """The ports that are parameters (not buffers such as BatchNorm statistics or unit masks)."""
    names = {n for n, _ in net.named_parameters()}
    return [p for p in ports if p.name in names]


Criterion = Callable[..., torch.Tensor]  # (outputs, target, reduction=...) -> loss, as torch's functional losses


class Neighbourhood:
    """An over-grown net plus its candidate variables; `loss(step, gates)` is L(f_{ε,δ}).

    The neighbourhood owns `net` (it is put in eval mode and its parameters stop requiring grad).
    `criterion` compares outputs with targets: the learner's cross-entropy, or a regression loss such as
    `F.mse_loss` (the paper's toy problems, Figure 3).
    """

    def __init__(
        self,
        net: GrowableNet,
        head: int | None,
        perturbations: list[Perturbation],
        new_units: list[NewUnits],
    ) -> None:
        self.net = net.eval()
        for p in net.parameters():
            p.requires_grad_(False)
        self.head = head
        self.base = {n: p.detach() for n, p in net.named_parameters()}
        self.perturbations = perturbations
        self.new_units = new_units
        self.free = self._free_weights()
        self.penalties: list[Retention] = []  # the run's strategies whose penalty only reads outputs (distillation)
        self.criterion: Criterion = F.cross_entropy

    def _free_weights(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Per parameter: a zero-initialised trainable change and the mask of the new units' entries."""
        groups = self.net.width_groups()
        masks: dict[str, torch.Tensor] = {}
        for new in self.new_units:
            group = groups[new.group]
            for port in parameter_ports(self.net, group.producers):
                mask = masks.setdefault(port.name, torch.zeros_like(self.base[port.name], dtype=torch.bool))
                channels({port.name: mask}, port)[new.start:] = True
            for port in parameter_ports(self.net, group.consumers):
                mask = masks.setdefault(port.name, torch.zeros_like(self.base[port.name], dtype=torch.bool))
                channels({port.name: mask}, port)[new.start:] = True
        return {name: (torch.zeros_like(self.base[name], requires_grad=True), mask) for name, mask in masks.items()}

    def candidates(self) -> list[dict]:
        """One plain record per candidate, in the order of `torch.cat(gates())`."""
        out = [{"kind": p.kind, "group": p.origin, "unit": int(s)} for p in self.perturbations for s in p.sources]
        return out + [{"kind": "new", "group": n.group, "unit": j} for n in self.new_units for j in range(n.count)]

    def gates(self) -> list[torch.Tensor]:
        """The trainable ε of every candidate (perturbations first, then new units)."""
        return [p.gate for p in self.perturbations] + [n.gate for n in self.new_units]

    def trainable(self) -> list[torch.Tensor]:
        """Everything step one optimises: gates, directions and the new units' weights."""
        directions = [d for p in self.perturbations for d in p.directions]
        return self.gates() + directions + [delta for delta, _ in self.free.values()]

    def split_gates(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """A flat vector (one value per candidate) cut into the shapes of `gates()`."""
        return list(flat.split([g.numel() for g in self.gates()]))

    def parameters(self, gates: list[torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """Effective parameters of f_{ε,δ} for gate values `gates` (default: the trainable ones)."""
        gates = self.gates() if gates is None else gates
        out = {name: self.base[name] + delta * mask for name, (delta, mask) in self.free.items()}
        for perturbation, gate in zip(self.perturbations, gates):
            for name, change in perturbation.steps(gate, self.base).items():
                out[name] = out.get(name, self.base[name]) + change
        for new, gate in zip(self.new_units, gates[len(self.perturbations):]):
            out[new.gate_param] = gate
        return out

    def logits(self, x: torch.Tensor, gates: list[torch.Tensor] | None = None) -> torch.Tensor:
        """The output of f_{ε,δ} (head `self.head`) at gate values `gates`."""
        return FunctionalNet(self.net, self.parameters(gates))(x, self.head)

    def loss(self, step: Step, gates: list[torch.Tensor] | None = None) -> torch.Tensor:
        """The learner's training loss of f_{ε,δ} on one step: the mean `criterion` of the new rows and the replayed
        ones (as `Trainer` joins them: one shared head, or each replayed row on its own task's head in task-IL),
        plus the `penalties` of the run's distillation strategies on the new rows."""
        net = FunctionalNet(self.net, self.parameters(gates))
        replay = step.replay
        if replay is None or self.head is None:
            x = step.new.x if replay is None else torch.cat([step.new.x, replay.x])
            target = step.target if replay is None else torch.cat([step.target, step.replay_target])
            logits = net(x, self.head)
            loss, new_logits = self.criterion(logits, target), logits[: len(step.target)]
        else:
            new_logits = net(step.new.x, self.head)
            total = self.criterion(new_logits, step.target, reduction="sum")
            for t in torch.unique(replay.task).tolist():
                rows = replay.task == t
                total = total + self.criterion(net(replay.x[rows], int(t)), step.replay_target[rows], reduction="sum")
            loss = total / len(step)
        for strategy in self.penalties:
            extra = strategy.penalty(net, step.new, new_logits)
            if extra is not None:
                loss = loss + extra
        return loss


class FunctionalNet:
    """A net evaluated with other parameters (the neighbourhood's effective ones) through `functional_call`:
    callable as the net (`net(x, task)`) and with its `features`, as distillation penalties call them."""

    def __init__(self, net: GrowableNet, params: dict[str, torch.Tensor]) -> None:
        self._dispatch = _Dispatch(net)
        self._params = {f"net.{name}": value for name, value in params.items()}

    def __call__(self, x: torch.Tensor, task: int | None = None) -> torch.Tensor:
        return functional_call(self._dispatch, self._params, ("forward", x), {"task": task})

    def features(self, x: torch.Tensor, task: int | None = None) -> torch.Tensor:
        return functional_call(self._dispatch, self._params, ("features", x), {"task": task})


class _Dispatch(torch.nn.Module):
    """Holds the net so that `functional_call` can run any of its methods (`forward(name, ...)` calls `net.name`)."""

    def __init__(self, net: GrowableNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, method: str, x: torch.Tensor, task: int | None = None) -> torch.Tensor:
        return getattr(self.net, method)(x, task)


def descend(nb: Neighbourhood, batches: Iterator[Step], steps: int, lr: float, eps: float) -> list[float]:
    """Step one: `steps` Adam steps on every candidate variable, gates projected on [-eps, eps]; the losses."""
    if steps == 0:
        return []
    optimizer = torch.optim.Adam(nb.trainable(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = nb.loss(next(batches))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            for gate in nb.gates():
                gate.clamp_(-eps, eps)
        losses.append(float(loss.detach()))
    return losses


def taylor_scores(nb: Neighbourhood, data: list[Step], points: int) -> Scores:
    """Step two: s_i = (1/ε̃_i) ∫_0^ε̃_i dL/dζ_i dζ_i by the midpoint rule with `points` nodes c_z = (2z-1)/2n.

    The path scales every gate together (integrated gradients), so one backward pass per node
    scores all candidates and, up to the quadrature error, Σ_i ε̃_i s_i = L(ε̃) - L(0). The paper
    integrates candidate i with the others held at ε̃; at first order in ε both are the same.
    """
    trained = [g.detach().clone() for g in nb.gates()]
    total = sum(len(step) for step in data)
    slopes = [torch.zeros_like(g) for g in trained]
    for z in range(points):
        c = (2 * z + 1) / (2 * points)
        scaled = [(c * g).requires_grad_() for g in trained]
        for step in data:
            loss = nb.loss(step, scaled) * (len(step) / total)
            for slope, grad in zip(slopes, torch.autograd.grad(loss, scaled)):
                slope += grad / points
    with torch.no_grad():
        before = sum(float(nb.loss(s, [torch.zeros_like(g) for g in trained])) * len(s) for s in data) / total
        after = sum(float(nb.loss(s, trained)) * len(s) for s in data) / total
    return Scores(torch.cat(slopes), torch.cat(trained), before, after)
