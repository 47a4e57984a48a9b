"""The benchmark's figures in README.md and bench/README.md are what bench/results/*.json
say: a figure edited by hand, or a run whose results were not put in the docs, fails
here (`python3 bench/run.py --docs` writes them again). Nothing is run: it reads files."""

from __future__ import annotations

import importlib.util
import re
import sys
from types import ModuleType

import pytest
from conftest import REPO


@pytest.fixture(scope="module")
def docs() -> ModuleType:
    """bench/docs.py (bench/ is no package: it is loaded from its file)."""
    spec = importlib.util.spec_from_file_location("bench_docs", REPO / "bench" / "docs.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # (its dataclass looks itself up there)
    spec.loader.exec_module(module)
    return module


def test_the_docs_quote_the_results(docs: ModuleType) -> None:
    runs = docs.load()
    stale = {str(path.relative_to(REPO)): docs.stale(path.read_text(), runs)
             for path in docs.DOCS}
    assert stale == {"README.md": [], "bench/README.md": []}, \
        "`python3 bench/run.py --docs` writes them from bench/results"


def test_each_table_is_in_the_docs(docs: ModuleType) -> None:
    """A block taken out of the docs would no longer be checked."""
    names = [m["name"] for path in docs.DOCS for m in docs.BLOCK.finditer(path.read_text())]
    assert sorted(n for n in names if not n.startswith("figure ")) == sorted(docs.BLOCKS)
    assert any(n.startswith("figure ") for n in names)


def test_a_figure_changed_by_hand_is_found(docs: ModuleType) -> None:
    runs = docs.load()
    readme = (REPO / "README.md").read_text()
    block = next(docs.BLOCK.finditer(readme))
    figure = re.search(r"\d+\.\d\d s", block["body"])[0]  # type: ignore[index]
    edited = readme.replace(block["body"], block["body"].replace(
        figure, "0.02 s" if figure == "0.01 s" else "0.01 s", 1))
    assert docs.stale(edited, runs) == [block["name"]]
    assert docs.stale(docs.rewrite(edited, runs), runs) == []
