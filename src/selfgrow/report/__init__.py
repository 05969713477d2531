"""Run results and their reports: JSON/CSV, matplotlib figures, one self-contained HTML page."""

from selfgrow.report.html import write_report
from selfgrow.report.paired import paired_difference
from selfgrow.report.results import Results

__all__ = ["Results", "paired_difference", "write_report"]
