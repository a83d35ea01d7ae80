"""The leaderboard page in a real headless browser (Debian's chromium; skipped without one):
it fits a 1400 px viewport, every column is reachable by scrolling inside the table, the model
column stays in view, and the glossary is there."""

import json
import math
import shutil
import subprocess

import pandas as pd
import pytest

from hdbench.leaderboard import write_leaderboard
from hdbench.scoring import all_benchmarks

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser") or \
    shutil.which("google-chrome")
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no headless chromium installed")

PROBE = """
<script>
window.addEventListener("load", function () {
  var scrolls = Array.from(document.querySelectorAll(".scroll"));
  var sticky = document.querySelector("#main td.sticky");
  document.title = JSON.stringify({
    page: document.documentElement.scrollWidth, view: window.innerWidth,
    tables: scrolls.map(function (s) { return [s.scrollWidth, s.clientWidth]; }),
    sticky: sticky ? getComputedStyle(sticky).position : null,
    glossary: document.querySelectorAll("dl.glossary dt").length,
    coloured: document.querySelectorAll("td[data-score][style]").length});
});
</script>
"""


def wide_table(n_models: int = 30) -> tuple[pd.DataFrame, dict]:
    benches = {ref: all_benchmarks([ref]) for ref in ("fly", "rodent")}
    rows = []
    for m in range(n_models):
        for ref, bs in benches.items():
            for i, b in enumerate(bs):
                value = math.sin(m + i)
                rows.append({"model": f"a-long-model-name-{m:02d}", "seed": 0, "reference": ref,
                             "benchmark": b.id, "version": b.version, "raw": value,
                             "ceiling": 1.0, "ceiling_sd": 0.1, "floor": 0.0, "floor_sd": 0.1,
                             "normalised": value, "error": 0.05, "family": b.family,
                             "higher_is_better": True, "note": ""})
    return pd.DataFrame(rows), benches


def render(page, tmp_path, *extra):
    return subprocess.run([BROWSER, "--headless", "--no-sandbox", "--disable-gpu",
                           "--window-size=1400,900", *extra, page.as_uri()],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)


def test_the_page_fits_1400_px_and_every_column_is_reachable(tmp_path):
    table, benches = wide_table()
    paths = write_leaderboard(table, tmp_path / "board", {"generated": "test"}, benches)
    probed = tmp_path / "probed.html"
    probed.write_text(paths["html"].read_text().replace("</body>", PROBE + "</body>"))
    dom = render(probed, tmp_path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-500:]
    title = dom.stdout.split("<title>", 1)[1].split("</title>", 1)[0]
    info = json.loads(title.replace("&quot;", '"'))
    assert info["page"] <= info["view"], info  # nothing is cut off at the page level
    main, per_benchmark = info["tables"]
    assert per_benchmark[0] > per_benchmark[1]  # wide: scrolls inside its own box
    assert info["sticky"] == "sticky"
    assert info["glossary"] == sum(len(b) for b in benches.values())
    assert info["coloured"] > 0
    shot = render(paths["html"], tmp_path, f"--screenshot={tmp_path / 'page.png'}")
    assert shot.returncode == 0 and (tmp_path / "page.png").stat().st_size > 10_000
