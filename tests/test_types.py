"""The package type-checks under strict mypy (records at every boundary are typed)."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).parent.parent


def test_the_package_passes_strict_mypy() -> None:
    result = subprocess.run([sys.executable, "-m", "mypy", "edgesite"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
