"""selfgrow: incremental learning with self-growing neural networks chosen by AutoML search."""

__version__ = "0.1.0"
