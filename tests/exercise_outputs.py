"""What the exercise checks printed in an executed notebook (used by test_notebooks.py and
test_exercises.py).

Every code cell that calls checks of ``faderlib.exercises`` (``check_NN_...(...)``) must show one
status line per call, each with the expected status: ``TODO`` ("not answered yet") in a course
notebook, whose exercises hold their placeholders, ``PASS`` in a solution notebook. Which checks a
cell calls is the library's walker (:func:`faderlib.exercises.checking.checks_called`, tested in
test_exercises.py); what the executed cells printed is read here, from their outputs.
"""

from __future__ import annotations

import re

from faderlib.exercises.checking import checks_called

STATUS = re.compile(r"^(PASS|FAIL|TODO)  exercise (\d\.\d) ")


def statuses(cell) -> list[tuple[str, str]]:
    """(status, exercise number) of every status line a cell printed."""
    found = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            found += [m.groups() for m in map(STATUS.match, out.get("text", "").splitlines()) if m]
    return found


def exercise_output_problems(nb, expected: str) -> list[str]:
    """What is wrong with the checks' output of an executed notebook (empty: nothing), when every
    check should have printed ``expected`` (``"TODO"`` or ``"PASS"``)."""
    problems = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        calls = checks_called(cell.source)
        printed = statuses(cell)
        if not calls and not printed:
            continue
        text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")
        if len(printed) != len(calls):
            problems.append(f"cell {cell.get('id')}: {len(calls)} check(s) called, {len(printed)} status line(s) "
                            f"printed:\n{text}")
        wrong = [f"{status} {number}" for status, number in printed if status != expected]
        if wrong:
            problems.append(f"cell {cell.get('id')}: expected every check to print {expected}, got "
                            f"{', '.join(wrong)}:\n{text}")
    return problems
