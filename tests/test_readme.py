"""The README's curl example works as written, against a real server."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_curl_lifecycle_example_works(server):
    text = README.read_text()
    block = re.search(r"```bash\n(# Create a Test.*?)```", text, re.S)
    assert block, "the README lost its curl example"
    script = block.group(1).replace("http://127.0.0.1:8000", server.url)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    output = result.stdout
    assert re.search(r'"processed_updates":\s*1\b', output), output
    assert re.search(r'"failed_updates":\s*0\b', output), output
    assert '"added":[2]' in output.replace(" ", "") and "is retired" in output
    assert "successfully deleted" in output
