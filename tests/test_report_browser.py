"""report.html rendered in headless Chromium: every image loads, nothing overflows the page width, no request
leaves the page (it works offline), and a screenshot can be taken. Skips in one line where Chromium is missing."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from selfgrow.config import from_dict
from selfgrow.experiment import run

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here (Debian package `chromium`; .ci/run installs it)")

# the flags the machine's closed network needs (no background connections) plus a resolver that resolves
# nothing and a dead proxy, so that any request for something outside the page fails
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
         "--disable-background-networking", "--disable-component-update", "--host-resolver-rules=MAP * ~NOTFOUND",
         "--proxy-server=127.0.0.1:9", "--hide-scrollbars"]

CHECK = """<script>
window.addEventListener('load', () => {
  const doc = document.documentElement;
  const images = [...document.images];
  const wide = [...document.body.querySelectorAll('*')].filter(e => {
    const r = e.getBoundingClientRect();
    return r.right > doc.clientWidth + 1 && !e.closest('.wide, pre, details:not([open])');
  }).map(e => e.tagName + (e.className ? '.' + e.className : ''));
  const out = document.createElement('pre');
  out.id = 'selfgrow-check';
  out.textContent = JSON.stringify({
    images: images.length,
    broken: images.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.alt),
    overflow: doc.scrollWidth - doc.clientWidth,
    wide: wide,
    requests: performance.getEntriesByType('resource').map(r => r.name).filter(n => !n.startsWith('data:')),
  });
  document.body.appendChild(out);
});
</script>"""


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """A searched run of ten one-class tasks (a wide accuracy matrix, candidate tables, every figure kind)."""
    out = tmp_path_factory.mktemp("runs")
    config = from_dict({
        "name": "browser", "seed": 0, "output": str(out),
        "stream": {"name": "split", "dataset": "digits", "scenario": "class", "n_tasks": 10},
        "net": {"preset": "mlp-tiny"},
        "growth": {"name": "compound", "options": {"max_phi": 1, "n_trials": 2, "epochs": [1, 2], "halving_batch": 2}},
        "retention": [{"name": "replay", "options": {"budget": 50}}],
        "trainer": {"epochs": 2, "batch_size": 64, "progress": False},
    })
    run(config, quiet=True)
    return out / "browser" / "report.html"


def _render(page: Path, tmp_path: Path, width: int) -> dict:
    """Load `page` with the checking script added and return what the script measured."""
    checked = tmp_path / f"checked_{width}.html"
    checked.write_text(page.read_text().replace("</body>", CHECK + "</body>"))
    done = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / f'profile_{width}'}",
                           f"--window-size={width},900", "--virtual-time-budget=10000", "--dump-dom",
                           checked.as_uri()], capture_output=True, text=True, timeout=120)
    found = re.search(r"<pre id=\"selfgrow-check\">(.*?)</pre>", done.stdout, re.S)
    assert found, f"Chromium printed no check result (rc {done.returncode}): {done.stderr[-800:]}"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))


@pytest.mark.parametrize("width", [1280, 800])
def test_report_renders_offline_with_every_image_and_no_overflow(report, tmp_path, width):
    measured = _render(report, tmp_path, width)
    assert measured["images"] >= 5  # matrix, accuracy/cost, growth timeline, architecture, Pareto fronts
    assert measured["broken"] == []
    assert measured["overflow"] <= 0, measured["wide"]
    assert measured["wide"] == []
    assert measured["requests"] == []


def test_report_names_no_external_address(report):
    text = report.read_text()
    assert re.findall(r"""(?:src|href)\s*=\s*['"]?(?:https?:)?//""", text) == []


def test_report_screenshot(report, tmp_path):
    shot = tmp_path / "report.png"
    done = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,2400",
                           f"--screenshot={shot}", report.as_uri()], capture_output=True, text=True, timeout=120)
    assert shot.is_file(), done.stderr[-800:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
