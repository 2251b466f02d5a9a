"""The documentation points at things that exist: linked files, and the code paths it names."""

import re
from pathlib import Path

import pytest

from conftest import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
CODE_PATH = re.compile(r"`((?:genrec_plugins|genrec|plugins|recipes|benchmarks|tests)/[\w./-]+\.(?:py|sh))")


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_relative_links_and_named_code_paths_exist(page: Path) -> None:
    text = page.read_text()
    missing = [target for target in LINK.findall(text) if "://" not in target and not (page.parent / target).exists()]
    missing += [path for path in CODE_PATH.findall(text) if not (ROOT / path).exists()]
    assert not missing, f"{page.relative_to(ROOT)} names what does not exist: {missing}"


def test_the_python_api_page_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    page = (ROOT / "docs" / "python-api.md").read_text()
    blocks = [block.split("```", 1)[0] for block in page.split("```python\n")[1:]]
    assert len(blocks) == 4
    for number, code in enumerate(blocks, start=1):
        exec(compile(code, f"docs/python-api.md block {number}", "exec"), {})
    assert (tmp_path / "runs" / "api-sasrec" / "results.json").is_file()
