"""The one percentile (``course_server.lab.stats``): nearest rank, no interpolation."""

from __future__ import annotations

import math

import pytest

from course_server.lab.stats import percentile, percentiles

TWENTY = [float(n) for n in range(1, 21)]


def test_one_value_is_every_percentile() -> None:
    assert {percentile([3.0], p) for p in (0, 1, 50, 99, 100)} == {3.0}


def test_p0_is_the_smallest_value() -> None:
    assert percentile(TWENTY, 0) == 1.0


def test_p100_is_the_largest_value() -> None:
    assert percentile(TWENTY, 100) == 20.0


def test_the_rank_is_p_percent_of_the_count_rounded_up() -> None:
    assert percentile(TWENTY, 95) == 19.0  # rank 19 exactly
    assert percentile(TWENTY, 96) == 20.0  # rank 19.2, rounded up to 20


def test_nothing_is_interpolated_between_two_values() -> None:
    assert percentile([10.0, 20.0], 50) == 10.0
    assert percentile([10.0, 20.0], 51) == 20.0


def test_the_median_of_an_even_count_is_the_lower_middle_value() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0


def test_a_high_percentile_of_few_values_is_the_maximum() -> None:
    assert percentile(list(range(30)), 99) == 29.0


def test_no_values_give_nan() -> None:
    assert math.isnan(percentile([], 50))


@pytest.mark.parametrize("p", [-1, 101])
def test_a_p_outside_0_to_100_is_refused(p: float) -> None:
    with pytest.raises(ValueError, match="between 0 and 100"):
        percentile(TWENTY, p)


def test_percentiles_sorts_once_and_answers_each_p() -> None:
    assert percentiles([3.0, 1.0, 2.0], (0, 50, 100)) == {0: 1.0, 50: 2.0, 100: 3.0}


def test_an_integer_sequence_gives_a_float() -> None:
    assert isinstance(percentile([1, 2, 3], 50), float)
