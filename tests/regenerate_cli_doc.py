"""Rewrite docs/cli.md's example outputs with what the commands print now.

``tests/test_cli.py::test_the_documented_outputs_are_what_the_commands_print``
fails when a documented output no longer matches; after a deliberate change
(a new default, say), run ``python tests/regenerate_cli_doc.py`` and review the
diff. It runs the page's walkthrough in a temporary folder, as the test does.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import test_cli  # noqa: E402

DOC = HERE.parent / "docs" / "cli.md"


def main() -> None:
    text = DOC.read_text()
    folder, logs = test_cli.run_walkthrough(text, Path(tempfile.mkdtemp()))
    new = text
    for n, block in test_cli.shown_outputs(text):
        printed = test_cli.printed_output(block, n, folder, logs)
        if "…" in block.split("\n"):  # the docs show the first lines only
            printed = printed[:block.split("\n").index("…")] + ["…"]
        new = new.replace("```\n" + block + "```", "```\n" + "\n".join(printed) + "\n```", 1)
    DOC.write_text(new)
    print(f"rewrote {DOC}" if new != text else f"{DOC} already matches")


if __name__ == "__main__":
    main()
