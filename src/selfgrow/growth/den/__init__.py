"""DEN (Yoon et al. 2018): selective retraining, dynamic expansion and split/duplication with timestamps."""

from selfgrow.growth.den.grower import DENGrower

__all__ = ["DENGrower"]
