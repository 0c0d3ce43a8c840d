"""Documentation the code points to exists: cited ARCHITECTURE.md sections, package data patterns."""
import configparser
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_cited_architecture_section_exists():
    doc = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    headings = set(re.findall(r"^## (\d+)\. ", doc, re.M))
    cited = {}
    for f in sorted((ROOT / "lbam").rglob("*.py")):
        for n in re.findall(r"ARCHITECTURE\.md,? sections? (\d+)", f.read_text()):
            cited.setdefault(n, f.relative_to(ROOT))
    assert cited and set(cited) <= headings, {n: str(f) for n, f in cited.items() if n not in headings}
    for f in sorted((ROOT / "lbam").rglob("*.py")):
        for ref in re.findall(r"(\S*)ARCHITECTURE\.md", f.read_text()):
            assert ref.endswith("docs/"), f"{f}: cite docs/ARCHITECTURE.md, the file in the repository"


def test_package_data_patterns_match_files():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    patterns = [p.strip() for p in cfg["options.package_data"]["lbam"].split(",") if p.strip()]
    for pattern in patterns:
        assert list((ROOT / "lbam").glob(pattern)), f"package data {pattern!r} matches no file under lbam/"
