"""The module map in docs/architecture.md, made from the modules' own docstrings.

    python scripts/module_map.py          rewrite the map in docs/architecture.md
    python scripts/module_map.py --check  exit 1 if the map is not current (a test runs this)

Each package's row gives its layer (pyproject's import-linter contracts); each module's row
is the first paragraph of its docstring, so the map changes when the code does.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "sipline"
DOC = ROOT / "docs" / "architecture.md"
BEGIN, END = "<!-- module map: begin -->", "<!-- module map: end -->"

# Top to bottom, as the layers contract in pyproject.toml orders them.
LAYERS = {
    "cli": "wiring: commands, options, output",
    "server": "policy of `sipline serve`",
    "phone": "policy of the user agent",
    "runtime": "asyncio: the endpoint, timers",
    "transport": "asyncio: sockets",
    "storage": "store (SQLite, PostgreSQL)",
    "media_io": "asyncio: media streams",
    "media": "sans-I/O: media",
    "sdp": "sans-I/O: SDP",
    "content": "sans-I/O: bodies",
    "core": "sans-I/O: SIP",
    "testing": "fakes for tests",
}


def _summary(path: Path) -> str:
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    first = " ".join(doc.split("\n\n")[0].split())
    return first.replace("|", "\\|")


def render() -> str:
    rows = ["| module | what it does | layer |", "|---|---|---|"]
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        if rel.name == "__init__.py" and rel.parent == Path("."):
            continue
        top = rel.parts[0] if len(rel.parts) > 1 else ""
        name = "/".join(rel.parts[:-1]) + "/" if rel.name == "__init__.py" else str(rel)
        layer = LAYERS.get(top, "")
        summary = _summary(path)
        if rel.name == "__init__.py" and not summary:
            continue
        rows.append(f"| `{name}` | {summary} | {layer} |")
    return "\n".join(rows)


def main(argv: list[str]) -> int:
    text = DOC.read_text(encoding="utf-8")
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    new = f"{head}{BEGIN}\n{render()}\n{END}{tail}"
    if "--check" in argv:
        if new != text:
            sys.stderr.write(
                "docs/architecture.md: the module map is not current;"
                " run python scripts/module_map.py\n"
            )
            return 1
        return 0
    DOC.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
