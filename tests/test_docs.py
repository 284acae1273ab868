"""The documents: their generated figures match the files they cite, the README
is a user's guide of at most 300 lines, and its links lead somewhere."""

from __future__ import annotations

import re

from ecg_model.docs import docs_render

from .conftest import ROOT


def test_generated_figures_match_the_files_they_cite():
    stale = [
        str(p.relative_to(ROOT))
        for p, text in docs_render().items()
        if p.read_text(encoding="utf-8") != text
    ]
    assert not stale, f"{stale} differ from their files: python -m ecg_model docs"


def test_the_readme_is_a_short_users_guide():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = text.splitlines()
    assert len(lines) <= 300
    first = "\n".join(lines[:60])  # the first screen or so
    assert "new patients" in first and "baseline" in first
    quick = text.index("## Quick start")
    assert text.index("--recipe experiments/21-edge-blank.json") < quick + 2500
    # Every relative link names a file of the project.
    for target in re.findall(r"\]\(((?!http)[^)#]+)", text):
        assert (ROOT / target).exists(), target
    for doc in (ROOT / "docs").glob("*.md"):
        for target in re.findall(r"\]\(((?!http)[^)#]+)", doc.read_text()):
            assert (doc.parent / target).exists(), (doc.name, target)
