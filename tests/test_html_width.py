"""The HTML report's tables fit a 1400 px window (headless Chromium; skipped where it is not installed)."""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from benchmark.reports.html import write_html_report

ROOT = Path(__file__).resolve().parent.parent
PROBE = """<script>
window.addEventListener('load', () => {
  const over = [...document.querySelectorAll('.scroll')].filter(d => d.scrollWidth > d.clientWidth + 1).length;
  document.body.insertAdjacentHTML('beforeend', '<p data-overflowing="' + over + '"></p>');
});
</script>"""


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs headless Chromium (Debian: apt-get install chromium)")
def test_the_reference_tables_fit_1400_px(tmp_path):
    page = write_html_report(ROOT / "results" / "reference", tmp_path / "report.html")
    page.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    dom = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1400,900",
                          "--virtual-time-budget=5000", "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    found = re.findall(r'data-overflowing="(\d+)"', dom.stdout)
    assert found, dom.stderr[-500:]
    assert found == ["0"]  # every table (all runs, each paper table, diagnostics) within the window
