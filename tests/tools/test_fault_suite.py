"""Fault injection through the real tools (issue 10): every row of ``fault_cases.rows`` runs as a
subprocess; a mistake ends with exit code 2 and one ``error:`` line (the last line of stderr, no
traceback) holding the expected words; valid odd input succeeds. Six rows run at a time.
README.md's troubleshooting table lists the same rows."""
import re

import pytest

from conftest import REPO_ROOT, start_tool
from fault_cases import Succeeds, Workspace, row_names, rows

_AT_ONCE = 6  # processes at a time: each holds torch (~300 MB); start-ups overlap


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    ws = Workspace(tmp_path_factory.mktemp("faults"))
    table = rows(ws)
    env_cwd = ws.root
    results, running, pending = {}, {}, list(table)
    while pending or running:
        while pending and len(running) < _AT_ONCE:
            name = pending.pop(0)
            running[name] = start_tool(*table[name][0], cwd=env_cwd)
        name, proc = next(iter(running.items()))
        out, err = proc.communicate(timeout=600)
        results[name] = (proc.returncode, out, err)
        del running[name]
    return table, results


def test_there_are_at_least_30_kinds():
    assert len(row_names()) >= 30


@pytest.mark.parametrize("name", row_names())
def test_each_fault_gets_its_line(outcomes, name):
    table, results = outcomes
    code, out, err = results[name]
    expected = table[name][1]
    assert "Traceback" not in err, f"{name}:\n{err[-3000:]}"
    if isinstance(expected, Succeeds):
        assert code == 0 and expected in err, f"{name}:\n{err[-3000:]}"
        return
    lines = err.strip().splitlines()
    assert code == 2, f"{name}: exit {code}\n{err[-3000:]}"
    assert lines and lines[-1].startswith("error: "), f"{name}:\n{err[-3000:]}"
    assert sum(line.startswith("error: ") for line in lines) == 1, f"{name}:\n{err[-3000:]}"
    assert expected in lines[-1], f"{name}: {lines[-1]}"


def test_the_readme_lists_every_row(outcomes):
    table, _ = outcomes
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("## Troubleshooting", 1)[1].split("\n## ", 1)[0]
    for name, (_, expected) in table.items():
        row = re.search(rf"^\| {re.escape(name)} \|(.*)$", section, re.MULTILINE)
        assert row, f"README's troubleshooting table has no row '{name}'"
        if not isinstance(expected, Succeeds):
            assert expected in row.group(1), f"{name}: README row does not show '{expected}'"
