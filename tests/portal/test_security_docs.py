"""docs/security-model.md: the OWASP ASVS table stays true to the tests it names.

A static check (nothing is run): every ``tests/...py::test_name`` in the table must be a function
of that name in that file (inside a class too), every level-2 requirement of the chapters the
table covers has exactly one row, every row says where the portal stands, and a row that says
"Met" names at least one test. Test names are written without parametrization brackets.
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

from tests.conftest import ROOT

DOC = Path("docs") / "security-model.md"
SECTION = "## OWASP ASVS 4.0.3, level 2"
STATUSES = ("Met", "Partly met", "Not met", "Not applicable")
REFERENCE = re.compile(r"(tests/[A-Za-z0-9_./-]+\.py)::([A-Za-z_][A-Za-z0-9_]*)")
NUMBER = re.compile(r"\d+\.\d+\.\d+")

# ASVS 4.0.3: every requirement of these chapters that level 2 includes (level 1 ones too), by
# section: "2.1.1-12" is 2.1.1 to 2.1.12. Deleted numbers (4.1.4, 7.3.2, 13.1.2, 13.2.4) and
# level-3-only sections (3.6) are left out; 2.8.7 is recommended, not required, at level 2.
LEVEL_2 = """
    2.1.1-12 2.2.1-3 2.3.1-3 2.4.1-5 2.5.1-7 2.6.1-3 2.7.1-6 2.8.1-7 2.9.1-3 2.10.1-4
    3.1.1 3.2.1-4 3.3.1-4 3.4.1-5 3.5.1-3 3.7.1
    4.1.1-3 4.1.5 4.2.1-2 4.3.1-3
    5.1.1-5 5.2.1-8 5.3.1-10 5.4.1-3 5.5.1-4
    7.1.1-4 7.2.1-2 7.3.1 7.3.3-4 7.4.1-3
    8.1.1-4 8.2.1-3 8.3.1-8
    12.1.1-3 12.2.1 12.3.1-6 12.4.1-2 12.5.1-2 12.6.1
    13.1.1 13.1.3-5 13.2.1-3 13.2.5-6 13.3.1-2 13.4.1-2
"""


def expected_numbers() -> list[str]:
    numbers = []
    for item in LEVEL_2.split():
        head, _, last = item.partition("-")
        section, _, first = head.rpartition(".")
        numbers += [f"{section}.{n}" for n in range(int(first), int(last or first) + 1)]
    return numbers


def table_rows(root: Path = ROOT) -> list[list[str]]:
    """The cells of every requirement row of the ASVS section (header and rule rows skipped)."""
    text = (root / DOC).read_text(encoding="utf-8")
    assert SECTION in text, f"{DOC} has no section {SECTION!r}"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        if not line.startswith("|"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if NUMBER.fullmatch(cells[0]):
            rows.append(cells)
    return rows


@functools.cache
def functions_in(path: Path) -> frozenset[str]:
    """Names of every function defined in ``path``, at any depth (methods of classes included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return frozenset(node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef))


def missing_references(root: Path = ROOT) -> list[str]:
    """``file::name`` of every test the table names that is not defined (or whose file is absent)."""
    missing = []
    for cells in table_rows(root):
        for file, name in REFERENCE.findall(" ".join(cells)):
            path = root / file
            if not path.is_file() or name not in functions_in(path):
                missing.append(f"{cells[0]}: {file}::{name}")
    return missing


def test_every_test_the_asvs_table_names_exists():
    assert missing_references() == []


def test_the_asvs_table_has_one_row_for_each_level_2_requirement():
    numbers = [cells[0] for cells in table_rows()]
    duplicates = sorted({n for n in numbers if numbers.count(n) > 1})
    assert duplicates == [], f"more than one row: {duplicates}"
    expected = expected_numbers()
    assert [n for n in expected if n not in numbers] == [], "requirements without a row"
    assert [n for n in numbers if n not in expected] == [], "rows for numbers that are not level-2 requirements here"
    assert numbers == expected, "rows out of the standard's order"


def test_every_asvs_row_says_where_the_portal_stands_and_a_met_row_names_a_test():
    for cells in table_rows():
        number = cells[0]
        assert len(cells) == 4, f"{number}: expected | ASVS | requirement | how | proved by |, got {len(cells)} cells"
        assert cells[1], f"{number}: no requirement text"
        status = re.match(r"\*\*([A-Za-z ]+)\.\*\*", cells[2])
        assert status and status.group(1) in STATUSES, f"{number}: the third cell starts with one of {STATUSES} in bold"
        if status.group(1) == "Met":
            assert REFERENCE.search(cells[3]), f"{number}: a met requirement names the test that proves it"
        assert all(m.group(0) in cells[3] for m in REFERENCE.finditer(cells[2])), f"{number}: tests go in the last cell"


def test_no_file_points_at_the_teams_private_notes():
    """Code and docs name public sources (ASVS, the OWASP cheat sheets, NIST SP 800-63B), never a
    file outside the repository."""
    needle = "SECURITY" + ".md"  # spelled in two parts, so this file does not match itself
    found = []
    for folder in ("docs", "publish_server", "toolkit", "tests", "benchmarks"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix in {".py", ".md", ".html", ".txt", ".toml"} and needle in path.read_text(encoding="utf-8", errors="replace"):
                found.append(str(path.relative_to(ROOT)))
    for path in sorted(ROOT.glob("*.md")):
        if needle in path.read_text(encoding="utf-8"):
            found.append(path.name)
    assert found == []
