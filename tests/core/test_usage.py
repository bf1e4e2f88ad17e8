"""``Usage``: counts reported by a back end or counted by abstractcore (``counted``)."""

from __future__ import annotations

from abstractcore.core.types import Usage


def test_of_computes_the_total_and_is_reported_unless_said() -> None:
    assert Usage.of(7, 3) == Usage(7, 3, 10, counted=False)
    assert Usage.of(None, 2, counted=True) == Usage(0, 2, 2, counted=True)


def test_a_sum_is_counted_when_any_part_was() -> None:
    assert (Usage.of(1, 2) + Usage.of(3, 4)).counted is False
    total = Usage.of(1, 2) + Usage.of(3, 4, counted=True)
    assert total == Usage(4, 6, 10, counted=True)
