"""wait_until's time-out message (no cluster needed): a described state is shown as text on
lines of its own, otherwise the last value the probe returned."""

from __future__ import annotations

import pytest

from e2e.cluster.client import wait_until


def test_wait_until_shows_a_described_state_as_text() -> None:
    with pytest.raises(TimeoutError) as raised:
        wait_until(lambda: None, timeout=0, what="thing", describe=lambda: "a: x\n  b: y")
    assert str(raised.value) == "thing: not reached within 0s:\na: x\n  b: y"
    with pytest.raises(TimeoutError, match=r"\(last seen: False\)"):
        wait_until(lambda: False, timeout=0, what="thing")
    with pytest.raises(TimeoutError, match=r"\(\['t1'\]\)"):
        wait_until(lambda: None, timeout=0, what="thing", describe=lambda: ["t1"])
