"""Anti-forgetting strategies as hooks (`Retention`), their registry and `build_retention(name, **options)`.

| name | strategy |
|---|---|
| ewc | EWC / online EWC (`online=True`): Fisher-weighted pull towards old weights |
| lwf | Learning without Forgetting: distil the old net's outputs |
| feature_kd | distil the old net's penultimate features (L2 or cosine) |
| replay | fixed-budget episodic memory, reservoir or herding selection |
| joint | all earlier tasks' data replayed (joint-training upper bound) |
| gem | GEM: each update projected so no earlier task's memory loss rises (a QP per step) |
| agem | A-GEM: the update projected against one reference gradient on a memory sample |
| freeze | freeze every weight (and old slice of a widened weight) of earlier tasks |
| slow_lr | old weights keep learning with a small lr factor (L2BG) |
| bias_correction | weight aligning of the class-IL head after each task |
| bic | BiC: a linear correction (alpha, beta) of each task's class logits, fit on a balanced held-out set |
| icarl_bce | iCaRL's sigmoid binary cross-entropy with distilled old-class targets, in place of cross-entropy |
"""

from selfgrow.retention.base import Batch, Retention
from selfgrow.retention.bias import WeightAligning
from selfgrow.retention.bic import BiC
from selfgrow.retention.distill import FeatureKD, LwF
from selfgrow.retention.ewc import EWC
from selfgrow.retention.gem import AGEM, GEM
from selfgrow.retention.icarl import ICaRLLoss
from selfgrow.retention.old_weights import Freeze, SlowLR
from selfgrow.retention.registry import RETENTION, build_retention, register_retention
from selfgrow.retention.replay import Joint, Replay
from selfgrow.retention.settings import apply_settings, current_settings

__all__ = [
    "apply_settings",
    "current_settings",
    "Batch", "Retention", "RETENTION", "build_retention", "register_retention",
    "EWC", "GEM", "AGEM", "LwF", "FeatureKD", "Replay", "Joint", "Freeze", "SlowLR", "WeightAligning", "ICaRLLoss", "BiC",
]
