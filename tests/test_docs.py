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


def _anchors(markdown: str) -> set:
    """GitHub-style anchors of the headings outside code blocks."""
    out, in_code = set(), False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            title = re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower())
            out.add(title.replace(" ", "-"))
    return out


def test_relative_links_of_the_readme_and_the_model_card_resolve():
    for doc in (ROOT / "README.md", ROOT / "docs" / "MODEL_CARD.md"):
        for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text()):
            if target.startswith(("http://", "https://")):
                continue
            name, _, anchor = target.partition("#")
            path = (doc.parent / name).resolve() if name else doc
            assert path.exists(), f"{doc.name}: link to a missing file: {target}"
            if anchor:
                assert anchor in _anchors(path.read_text()), f"{doc.name}: link to a missing heading: {target}"
