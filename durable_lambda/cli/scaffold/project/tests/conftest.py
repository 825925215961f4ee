"""Make src/ importable, as the functions' CodeUri makes it on Lambda."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
