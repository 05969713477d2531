"""selfgrow: incremental learning with self-growing neural networks chosen by AutoML search.

The public API in one place; the subpackages (`data`, `streams`, `nets`, `growth`, `retention`,
`train`, `report`, `metrics`) hold the details.
"""

from selfgrow import data, metrics, nets, streams
from selfgrow.bench import load_bench, run_bench
from selfgrow.config import RunConfig
from selfgrow.data import DatasetArrays, data_root, download, load
from selfgrow.errors import SelfgrowError
from selfgrow.experiment import run
from selfgrow.grow_sequences import SequenceSearch, run_sequence, search_grow_sequences
from selfgrow.growth import GROWERS, Grower, GrowthPlan, PredictionChoice, build_grower, naswot, register_grower
from selfgrow.methods import METHODS, resolve_method
from selfgrow.nets import GrowableNet, build, preset, register_net
from selfgrow.nets.ops import Growth
from selfgrow.options import option
from selfgrow.plugins import load_plugins
from selfgrow.report import Results, paired_difference, write_report
from selfgrow.retention import RETENTION, Batch, Retention, build_retention, register_retention
from selfgrow.streams import STREAMS, Stream, Task
from selfgrow.train import Learner, TaskRecord, Trainer, load_latest, resolve_device, save_checkpoint

__version__ = "0.1.0"

__all__ = [
    "GROWERS", "METHODS", "RETENTION", "STREAMS",
    "Batch", "DatasetArrays", "GrowableNet", "Grower", "Growth", "GrowthPlan", "Learner", "PredictionChoice", "Results",
    "Retention", "RunConfig", "SelfgrowError", "SequenceSearch", "Stream", "Task", "TaskRecord", "Trainer",
    "build", "build_grower", "build_retention", "data", "data_root", "download", "load", "load_bench", "load_latest",
    "load_plugins", "metrics", "naswot", "nets", "option", "paired_difference", "preset", "register_grower", "register_net",
    "register_retention", "resolve_device", "resolve_method", "run", "run_bench", "run_sequence", "save_checkpoint",
    "search_grow_sequences", "streams", "write_report",
]
