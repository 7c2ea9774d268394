"""The documentation stays true to the tree: the module guide lists every module of the package and
nothing that does not exist, the README stays a front door, and its links lead somewhere."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_module_guide_lists_every_module_and_nothing_else():
    guide = (ROOT / "docs" / "modules.md").read_text()
    listed = set(re.findall(r"`(avfusion/[\w/]+\.py)`", guide))
    modules = {str(p.relative_to(ROOT)) for p in (ROOT / "avfusion").rglob("*.py") if p.name != "__init__.py"}
    assert not modules - listed, f"modules missing from docs/modules.md: {sorted(modules - listed)}"
    assert not listed - modules, f"docs/modules.md lists modules that do not exist: {sorted(listed - modules)}"


def test_the_readme_is_a_front_door_whose_links_exist():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 260
    assert "make run" in readme and "make test" in readme
    for target in re.findall(r"\]\(([^)#]+)\)", readme):
        if not target.startswith("http"):
            assert (ROOT / target).exists(), f"README links to {target}, which does not exist"
    for page in (ROOT / "docs").glob("*.md"):
        for target in re.findall(r"\]\(([^)#]+)\)", page.read_text()):
            if not target.startswith("http"):
                assert (page.parent / target).exists(), f"{page.name} links to {target}, which does not exist"
