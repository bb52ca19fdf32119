"""scripts/mutate.py: which mutants a solution region yields, and which it leaves alone.

The mutator only; a full run (every exercise's checks against every mutant) is ``make mutation``.
"""

from __future__ import annotations

from conftest import load_script

mutate = load_script("mutate")

TINY = """\
def above(x, low):
    \"\"\"Outside the region: never mutated.\"\"\"
    if x < 0:
        raise ValueError
    # BEGIN SOLUTION
    if x > low and x != 3:
        return x - low
    # END SOLUTION
    return None
"""


def region_of(mutant: object) -> list[str]:
    """The mutant's edited lines, as a diff."""
    return mutant.diff(TINY)  # type: ignore[attr-defined]


def test_a_tiny_function_yields_each_operator_once_per_place() -> None:
    found = {(m.operator, tuple(region_of(m))[-1]) for m in mutate.mutants(TINY)}
    assert found == {
        ("statement deleted", "+    pass"),
        ("`>` → `>=`", "+    if x >= low and x != 3:"),
        ("`!=` → `==`", "+    if x > low and x == 3:"),
        ("`and` → `or`", "+    if x > low or x != 3:"),
        ("condition negated", "+    if not (x > low and x != 3):"),
        ("constant 3 → 4", "+    if x > low and x != 4:"),
        ("constant 3 → 2", "+    if x > low and x != 2:"),
        ("`-` → `+`", "+        return x + low"),
        ("`return x` → `return None`", "+        return None"),
        ("statement deleted", "+        pass"),
    }


def test_code_outside_the_solution_region_is_never_mutated() -> None:
    ((begin, end),) = mutate.regions(TINY)
    assert (begin, end) == (5, 8)
    assert all(begin < m.start[0] and m.end[0] < end for m in mutate.mutants(TINY))


def test_a_close_loses_its_reason_its_code_and_its_await() -> None:
    source = (
        "async def f(ws):\n    # BEGIN SOLUTION\n    await ws.close(4000, 'Out of guesses')\n"
        "    # END SOLUTION\n"
    )
    edits = {m.operator: m.diff(source)[-1] for m in mutate.mutants(source)}
    assert edits["close without its reason"] == "+    await ws.close(4000)"
    assert edits["close without its code and reason"] == "+    await ws.close()"
    assert edits["`await` of a close removed"] == "+    ws.close(4000, 'Out of guesses')"


def test_an_except_clause_is_narrowed_or_pointed_at_the_wrong_type() -> None:
    source = (
        "def f():\n    # BEGIN SOLUTION\n    try:\n        g()\n"
        "    except (KeyError, OSError):\n        pass\n    # END SOLUTION\n"
    )
    narrowed = sorted(m.diff(source)[-1] for m in mutate.mutants(source) if "except" in m.operator)
    assert narrowed == ["+    except KeyError:", "+    except OSError:"]


def test_deleting_the_bare_return_that_ends_a_function_is_not_a_mutant() -> None:
    source = (
        "def f(x):\n    # BEGIN SOLUTION\n    x.append(1)\n    return None\n    # END SOLUTION\n"
    )
    deleted = [
        m.diff(source)[0] for m in mutate.mutants(source) if m.operator == "statement deleted"
    ]
    assert deleted == ["-    x.append(1)"]


def test_break_and_continue_swap() -> None:
    source = (
        "def f(xs):\n    # BEGIN SOLUTION\n    for x in xs:\n        break\n    # END SOLUTION\n"
    )
    assert "+        continue" in [m.diff(source)[-1] for m in mutate.mutants(source)]


def test_the_solution_region_of_a_real_exercise_is_found() -> None:
    cells = mutate.code_cells(mutate.solution_notebook("04"))
    source = cells[mutate.target_cell(cells, "TokenBucket")]
    assert "class TokenBucket" in source
    assert len(mutate.regions(source)) == 1
    assert any("self.tokens < 1" in line for m in mutate.mutants(source) for line in m.diff(source))


def test_a_mutant_that_does_not_compile_is_skipped() -> None:
    broken = mutate.Mutant("made up", (6, 4), (6, 6), "if if")
    fine = mutate.mutants(TINY)
    assert mutate.runnable(TINY, [broken, *fine]) == fine


def test_a_sample_is_the_same_every_time_and_in_source_order() -> None:
    found = mutate.mutants(TINY)
    first = mutate.sample(found, 4, "04.2")
    assert len(first) == 4
    assert first == mutate.sample(found, 4, "04.2")
    assert first == sorted(first, key=found.index)


def test_an_operator_swap_changes_the_operator_only() -> None:
    source = (
        "def f(event, last_id):\n    # BEGIN SOLUTION\n"
        '    return event["id"] > (last_id + 1)  # a gap\n    # END SOLUTION\n'
    )
    swapped = {m.operator: m.diff(source)[-1] for m in mutate.mutants(source)}
    assert swapped["`>` → `>=`"] == '+    return event["id"] >= (last_id + 1)  # a gap'
    assert swapped["`+` → `-`"] == '+    return event["id"] > (last_id - 1)  # a gap'
