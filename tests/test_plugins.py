"""Plugins: docs/extending.md's examples, each written to a file and used as the plugin of a real run (CLI, bench,
a distributed worker); clear errors for plugins that cannot be imported."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from selfgrow.cli import main
from selfgrow.errors import SelfgrowError
from selfgrow.plugins import load_plugins

DOC = Path(__file__).resolve().parent.parent / "docs" / "extending.md"
BASE = {
    "seed": 0,
    "stream": {"name": "split", "dataset": "digits", "scenario": "class", "n_tasks": 3, "classes_per_task": 2},
    "net": {"preset": "mlp-tiny"},
    "trainer": {"epochs": 1, "batch_size": 64, "optimizer": "adam", "lr": 0.003, "progress": False},
}


@pytest.fixture(autouse=True)
def registries_as_they_were():
    """A plugin imported in this process registers for good; each test leaves the registries as it found them."""
    from selfgrow.growth import GROWERS
    from selfgrow.nets.base import NET_KINDS
    from selfgrow.retention import RETENTION

    saved = [(registry, dict(registry)) for registry in (GROWERS, RETENTION, NET_KINDS)]
    yield
    for registry, entries in saved:
        registry.clear()
        registry.update(entries)


def examples(tmp_path: Path) -> list[dict]:
    """The doc's (python, yaml) example pairs, each python block written where its yaml's `plugins` names it."""
    text = DOC.read_text()
    python = re.findall(r"```python\n(.*?)```", text, re.S)
    configs = [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", text, re.S)]
    assert len(python) == len(configs) == 2
    out = []
    for code, config in zip(python, configs):
        path = tmp_path / config["plugins"][0]
        path.write_text(code)
        out.append({**BASE, **config, "plugins": [str(path)], "output": str(tmp_path / "runs")})
    return out


def growth_log(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "growth.jsonl").read_text().splitlines()]


def test_the_docs_grower_and_strategy_run_from_a_plugin_file_through_the_cli(tmp_path):
    config = examples(tmp_path)[0]
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({**config, "name": "mine"}))
    assert main(["run", "--config", str(path)]) == 0
    run_dir = tmp_path / "runs" / "mine"
    log = growth_log(run_dir)
    assert log[0]["reasons"]["rule"].startswith("widen-last: the first task")
    assert log[1]["reasons"]["rule"] == "widen-last: 16 units more on hidden.0"
    costs = json.loads((run_dir / "results.json").read_text())["costs"]
    assert costs[1]["params"] > costs[0]["params"] and costs[2]["params"] > costs[1]["params"]
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["plugins"] == config["plugins"]  # a resumed run imports them again
    assert saved["retention"][0]["name"] == "l2-anchor"


def test_plugins_given_to_the_bench_command_reach_every_job(tmp_path, capsys):
    config = examples(tmp_path)[0]
    plugin = config.pop("plugins")[0]
    bench = {"name": "plugged", "base": {k: v for k, v in config.items() if k not in ("growth", "retention", "output")},
             "methods": {"mine": {"growth": config["growth"], "retention": config["retention"]}},
             "seeds": [0], "output": str(tmp_path / "bench")}
    path = tmp_path / "bench.yaml"
    path.write_text(yaml.safe_dump(bench))
    assert main(["bench", "--config", str(path), "--workers", "2", "--plugins", plugin]) == 0
    assert "- mine: rule: widen-last: 16 units more on hidden.0" in capsys.readouterr().out
    assert yaml.safe_load((tmp_path / "bench" / "mine" / "seed0" / "config.yaml").read_text())["plugins"] == [plugin]


def test_a_plugin_search_grower_is_trained_by_a_distributed_worker(tmp_path):
    config = examples(tmp_path)[1]
    config["stream"] = {**config["stream"], "n_tasks": 2}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({**config, "name": "distributed"}))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "selfgrow.cli", "run", "--config", str(path), "--storage",
                           f"journal:{tmp_path / 'search.log'}", "--workers", "1"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    plan = growth_log(tmp_path / "runs" / "distributed")[1]
    trained = [c for c in plan["candidates"] if c["status"] == "complete"]
    assert {c["params"]["units"] for c in plan["candidates"]} <= {0, 8, 16} and trained
    assert all(c.get("worker") for c in trained)  # trained by the worker, which imported the plugin itself


def test_the_list_command_shows_a_plugins_components(tmp_path, capsys):
    config = examples(tmp_path)[0]
    assert main(["list", "growers", "--plugins", config["plugins"][0]]) == 0
    assert "widen-last" in capsys.readouterr().out


def test_plugins_that_cannot_be_imported_stop_the_run_in_one_sentence(tmp_path, capsys):
    with pytest.raises(SelfgrowError, match=r"Plugin 'no_such_module_xyz' was not found on the module path; accepted"):
        load_plugins(["no_such_module_xyz"])
    with pytest.raises(SelfgrowError, match=r"Plugin file '.*missing.py' does not exist"):
        load_plugins([str(tmp_path / "missing.py")])
    broken = tmp_path / "broken.py"
    broken.write_text("import no_such_dependency_xyz\n")
    with pytest.raises(SelfgrowError, match=r"Plugin '.*broken.py' failed while being imported "
                                            r"\(ModuleNotFoundError: No module named 'no_such_dependency_xyz'\)"):
        load_plugins([str(broken)])
    with pytest.raises(SelfgrowError, match=r"plugins='x.py' is invalid; accepted: a list"):
        load_plugins("x.py")
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({**BASE, "plugins": [str(broken)], "output": str(tmp_path / "runs")}))
    assert main(["run", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "failed while being imported" in err[0]
    # the run command's flag takes plugins as the bench and list commands do (space-separated) or as a list
    for flag in (["--plugins", str(tmp_path / "missing.py")], [f"--plugins=[{tmp_path / 'missing.py'}]"]):
        assert main(["run", "--config", str(path), *flag]) == 2
        assert "missing.py' does not exist" in capsys.readouterr().err


def test_a_plugin_file_is_imported_once_however_often_it_is_named(tmp_path):
    plugin = tmp_path / "counted.py"
    plugin.write_text("import builtins\nbuiltins.selfgrow_test_imports = getattr(builtins, 'selfgrow_test_imports', 0) + 1\n")
    first, again = load_plugins([str(plugin)]), load_plugins([str(plugin), str(plugin)])
    import builtins

    assert again == [first[0], first[0]] and builtins.selfgrow_test_imports == 1
