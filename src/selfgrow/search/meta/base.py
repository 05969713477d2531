"""The growth knowledge base: every finished growth search, kept in an Optuna storage so later runs learn from it.

One study per search (per run and task), named `selfgrow-meta-v1/<run>/task<k>`: its trials are the candidates
evaluated (parameters in the search's own distributions, values [score, cost] for the complete ones, pruned and
failed ones as such, each with its operator calls, status, objectives (score and its standard error, plasticity,
stability), fidelity reached (epochs, rung) and compute in its user attributes); the study's user attributes hold
the schema version, the grower, the task's identity (`task_key`: its position, name and classes, shared by the runs
of one stream) and meta-features (`selfgrow.search.meta.features`), the sizes its scaling parameters acted on
(`sizes`: a widening factor's group width; absent from entries recorded before them), the point chosen and the most
accurate one, and
the outcome (`after_task`: mean validation accuracy over the seen tasks once the task is trained; `latest`,
`latest_task`: the same measured after the run's latest task, so after a finished run its end). Being an Optuna
storage, the base opens in optuna-dashboard, is shared by processes (a journal file) or machines (a database URL),
and `selfgrow meta list | show | export | import` reads and moves it.

Where: `location` is "journal:PATH", a database URL, or a plain PATH (a journal file); "default"
is `$SELFGROW_META`, else `journal:~/.cache/selfgrow/search/meta.journal`; `$SELFGROW_META=off` (or a
grower's `record: null`) records nothing.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from selfgrow.errors import SelfgrowError

SCHEMA = 1
PREFIX = f"selfgrow-meta-v{SCHEMA}/"
ENV = "SELFGROW_META"
DEFAULT = "default"
OFF = "off"
DEFAULT_FILE = Path("~/.cache/selfgrow/search/meta.journal")
CANDIDATE_KEYS = ("ops", "status", "accuracy", "se", "plasticity", "stability", "cost", "flops", "n_params", "epochs",
                  "rung", "spent_flops", "batch")


@dataclass
class Entry:
    """One finished growth search: the task it ran before, what it tried, what it chose and how that turned out."""

    run: str
    task: int
    grower: str
    features: dict[str, float]
    space: dict[str, str]  # parameter name -> its Optuna distribution as JSON
    candidates: list[dict[str, Any]]  # per trial: "params" and CANDIDATE_KEYS
    chosen: dict[str, Any]
    best: dict[str, Any]
    outcome: dict[str, float] = field(default_factory=dict)
    task_key: str = ""  # `features.task_identity`: shared by the runs of one stream; "" in entries recorded before it
    sizes: dict[str, float] = field(default_factory=dict)  # scaling parameter -> the size it acted on (`transfer`)

    @property
    def key(self) -> str:
        return f"{PREFIX}{self.run}/task{self.task}"

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Entry:
        if data.get("schema") != SCHEMA:
            raise SelfgrowError(f"Knowledge-base entry of schema {data.get('schema')!r} cannot be read; "
                                f"accepted: schema {SCHEMA} (this selfgrow's).")
        return cls(**{k: v for k, v in data.items() if k != "schema"})  # an entry without task_key: ""


def resolve(location: str | None) -> str | None:
    """The storage string of `location` ("default" and plain paths resolved), or None when recording is off."""
    if location == DEFAULT:
        location = os.environ.get(ENV) or f"journal:{DEFAULT_FILE.expanduser()}"
    if location in (None, OFF, ""):
        return None
    if location.startswith("journal:") or "://" in location:
        return location
    return f"journal:{Path(location).expanduser()}"


class KnowledgeBase:
    """Reads and writes the entries of one storage (see the module docstring)."""

    def __init__(self, location: str) -> None:
        import optuna

        from selfgrow.search.storage import make_storage

        optuna.logging.set_verbosity(optuna.logging.WARNING)  # no line per study: a base holds hundreds
        resolved = resolve(location)
        if resolved is None:
            raise SelfgrowError(f"Knowledge base {location!r} is off; accepted: a journal path or a database URL.")
        self.location = resolved
        self.storage = make_storage(resolved)

    # ---- writing ----------------------------------------------------------------------------

    def record(self, entry: Entry) -> None:
        """Store `entry` as a study of its own (a study already there, e.g. of a resumed run, is replaced)."""
        import optuna
        from optuna.distributions import json_to_distribution
        from optuna.trial import TrialState, create_trial

        self._delete(entry.key)
        study = optuna.create_study(study_name=entry.key, storage=self.storage, directions=["maximize", "minimize"])
        for name, value in entry.to_dict().items():
            if name not in ("candidates", "space"):
                study.set_user_attr(name, value)
        study.set_user_attr("space", entry.space)
        distributions = {k: json_to_distribution(v) for k, v in entry.space.items()}
        for candidate in entry.candidates:
            params = {k: v for k, v in candidate["params"].items() if k in distributions}
            complete = candidate.get("status") == "complete"
            state = (TrialState.COMPLETE if complete else TrialState.PRUNED if candidate.get("status") in ("pruned", "screened")
                     else TrialState.FAIL)
            study.add_trial(create_trial(
                params=params, distributions={k: distributions[k] for k in params},
                values=[float(candidate["accuracy"]), float(candidate["cost"])] if complete else None, state=state,
                user_attrs={k: candidate.get(k) for k in CANDIDATE_KEYS}))

    def set_outcome(self, key: str, outcome: dict[str, float]) -> None:
        """Merge `outcome` into the outcome of the entry stored under `key`."""
        import optuna

        study = optuna.load_study(study_name=key, storage=self.storage)
        study.set_user_attr("outcome", {**study.user_attrs.get("outcome", {}), **outcome})

    def _delete(self, key: str) -> None:
        import optuna

        if key in self.keys():
            optuna.delete_study(study_name=key, storage=self.storage)

    # ---- reading ----------------------------------------------------------------------------

    def keys(self) -> list[str]:
        """The study names of the entries, in storage order."""
        return [s.study_name for s in self.storage.get_all_studies() if s.study_name.startswith(PREFIX)]

    def entry(self, key: str) -> Entry:
        """The entry stored under `key` (a study name, or its part after the prefix)."""
        import optuna

        key = key if key.startswith(PREFIX) else PREFIX + key
        if key not in self.keys():
            raise SelfgrowError(f"No knowledge-base entry {key!r} in {self.location}; see `selfgrow meta list`.")
        study = optuna.load_study(study_name=key, storage=self.storage)
        attrs = study.user_attrs
        candidates = [{"params": dict(t.params), **{k: t.user_attrs.get(k) for k in CANDIDATE_KEYS}}
                      for t in study.get_trials(deepcopy=False)]
        return Entry.from_dict({**{k: attrs[k] for k in ("schema", "run", "task", "grower", "features", "space",
                                                         "chosen", "best")},
                                "outcome": attrs.get("outcome", {}), "task_key": attrs.get("task_key", ""),
                                "sizes": attrs.get("sizes", {}), "candidates": candidates})

    def entries(self) -> list[Entry]:
        """Every entry of this schema."""
        return [self.entry(key) for key in self.keys()]

    # ---- moving -----------------------------------------------------------------------------

    def export(self, path: str | Path) -> int:
        """Write every entry to `path` as JSON lines; returns how many."""
        entries = self.entries()
        Path(path).write_text("".join(json.dumps(e.to_dict(), sort_keys=True) + "\n" for e in entries))
        return len(entries)

    def import_file(self, path: str | Path) -> int:
        """Add (or replace) the entries of a JSON-lines file written by `export`; returns how many."""
        lines = [line for line in Path(path).read_text().splitlines() if line.strip()]
        for number, line in enumerate(lines, 1):
            try:
                entry = Entry.from_dict(json.loads(line))
            except (json.JSONDecodeError, TypeError) as err:
                raise SelfgrowError(f"Line {number} of {path} is not a knowledge-base entry ({err}); accepted: the "
                                    "JSON lines `selfgrow meta export` writes.") from err
            self.record(entry)
        return len(lines)
