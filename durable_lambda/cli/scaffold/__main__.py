"""``python -m durable_lambda.cli.scaffold template.yaml``: regenerate the scaffold's template."""

import sys
from pathlib import Path

from durable_lambda.cli.scaffold import source, user_template

if __name__ == "__main__":
    repository = Path(sys.argv[1] if len(sys.argv) > 1 else "template.yaml")
    text = user_template(repository.read_text(encoding="utf-8"))
    (source() / "template.yaml").write_text(text, encoding="utf-8")
