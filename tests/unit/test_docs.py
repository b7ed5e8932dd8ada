"""The documentation says what the code does, where a drift can be detected mechanically.

* the code table of ``docs/architecture.md`` is ``authsvc.errors.markdown_table()`` verbatim;
* the warm hot path listed there is the list in the docstring of ``authsvc/verify/service.py``
  (reStructuredText roles and literals read as Markdown code spans);
* the folder tree of ``docs/DESIGN.md`` §7 names every folder of ``authsvc/`` and nothing else;
* ``docs/DESIGN.md`` names every ``AUTHSVC_*`` setting.

Files are read as text and the code with ``ast``: nothing is imported but the registry and the
settings, which have no import-time side effects.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from authsvc.errors import markdown_table
from authsvc.settings import settings_doc

ROOT = Path(__file__).resolve().parents[2]
ARCHITECTURE = ROOT / "docs" / "architecture.md"
DESIGN = ROOT / "docs" / "DESIGN.md"
PACKAGE = ROOT / "authsvc"
BEGIN, END = "<!-- codes:begin -->", "<!-- codes:end -->"

_ROLE = re.compile(r":[a-z]+:`(~?)([^`]+)`")
_NUMBERED = re.compile(r"\d+\. ")
_FOLDER = re.compile(r"[a-z_]+/")
_MODULE = re.compile(r"[a-z_]+\.py")


def between_markers(text: str) -> str:
    assert text.count(BEGIN) == 1, "one code-table begin marker"
    assert text.count(END) == 1, "one code-table end marker"
    inside = text.split(BEGIN, 1)[1].split(END, 1)[0]
    return inside.strip("\n") + "\n"


def first_numbered_list(lines: list[str]) -> list[str]:
    """The items of the first list starting at ``1.``, each item's lines joined."""
    start = next(i for i, line in enumerate(lines) if line.startswith("1. "))
    items: list[str] = []
    for line in lines[start:]:
        if not line.strip():
            break
        if _NUMBERED.match(line):
            items.append(line)
        else:
            items[-1] += " " + line
    return [" ".join(item.split()) for item in items]


def rst_as_markdown(text: str) -> str:
    """``:role:`a.b``` → ```a.b``` (``~`` keeps the last name), then ````x```` → ```x```."""
    text = _ROLE.sub(lambda m: "`" + (m[2].rsplit(".", 1)[-1] if m[1] else m[2]) + "`", text)
    return text.replace("``", "`")


def section(text: str, heading: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return lines[start:end]


def design_tree() -> tuple[set[str], set[str], set[str]]:
    """(folders under ``authsvc/``, modules under ``authsvc/``, top-level folders) of §7."""
    lines = section(DESIGN.read_text(), "## 7.")
    fence = [i for i, line in enumerate(lines) if line.startswith("```")]
    assert len(fence) >= 2, "§7 has a fenced folder tree"
    tree = lines[fence[0] + 1 : fence[1]]
    folders: set[str] = set()
    modules: set[str] = set()
    top: set[str] = set()
    inside = False
    for line in tree:
        if not line.startswith(" "):
            inside = line.startswith("authsvc/")
            name = line.split()[0] if line.split() else ""
            if not inside and _FOLDER.fullmatch(name):
                top.add(name[:-1])
            continue
        if not inside or line.startswith("   "):  # a description's continuation line
            continue
        names = re.split(r"\s{2,}", line.strip())[0].split()
        folders.update(n[:-1] for n in names if _FOLDER.fullmatch(n))
        modules.update(n for n in names if _MODULE.fullmatch(n))
    return folders, modules, top


def test_architecture_code_table_is_the_registry() -> None:
    documented = between_markers(ARCHITECTURE.read_text())
    assert documented == markdown_table(), (
        "docs/architecture.md: replace the table between the codes markers with the output of "
        "`python -m authsvc.errors`"
    )


def test_architecture_hot_path_is_the_list_in_the_verify_service() -> None:
    source = (PACKAGE / "verify" / "service.py").read_text()
    docstring = ast.get_docstring(ast.parse(source)) or ""
    expected = [rst_as_markdown(item) for item in first_numbered_list(docstring.splitlines())]
    documented = first_numbered_list(section(ARCHITECTURE.read_text(), "## The warm hot path"))
    assert len(expected) >= 5
    assert documented == expected


def test_design_folder_tree_names_every_real_package_folder_and_no_other() -> None:
    folders, _, _ = design_tree()
    real = {p.name for p in PACKAGE.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))}
    assert sorted(folders - real) == [], "DESIGN.md §7 names folders authsvc/ does not have"
    assert sorted(real - folders) == [], "DESIGN.md §7 lacks folders of authsvc/"


def test_design_folder_tree_names_only_existing_modules_and_top_level_folders() -> None:
    _, modules, top = design_tree()
    assert {"app.py", "settings.py", "errors.py"} <= modules
    assert sorted(m for m in modules if not (PACKAGE / m).is_file()) == []
    assert "migrations" in top
    assert sorted(t for t in top if not (ROOT / t).is_dir()) == []


def test_design_documents_every_setting() -> None:
    design = DESIGN.read_text()
    missing = [name for name, _ in settings_doc() if name not in design]
    assert missing == [], f"docs/DESIGN.md lacks {missing}"
