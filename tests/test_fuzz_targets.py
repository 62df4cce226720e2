"""Every target in tests/fuzz_targets.py with a small fixed budget: bad input never crashes or hangs the studio.

The budget is fixed and the examples derandomized, so CI sees the same inputs on every run;
``scripts/fuzz_inputs.py`` explores with a far larger one.
"""

import pytest
from hypothesis import HealthCheck, given, settings

from tests.fuzz_targets import SUITE_EXAMPLES, TARGETS, FuzzTarget, run_one


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.name)
def test_bad_input_gives_the_studios_own_error_or_is_adapted(target: FuzzTarget, tmp_path, qapp):
    @settings(max_examples=target.suite_examples or SUITE_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(target.inputs)
    def feed(value):
        crash = run_one(target, value, tmp_path)
        if crash is not None:
            raise AssertionError(crash.describe(width=400)) from crash.error

    feed()


def test_a_crash_and_a_hang_are_reported(tmp_path):
    from hypothesis import strategies as st

    def fails(value, folder):
        raise {0: KeyError, 1: ValueError}[value]("boom")

    target = FuzzTarget("probe", st.just(0), fails, (ValueError,))
    assert run_one(target, 1, tmp_path) is None  # an expected error is the studio answering
    crash = run_one(target, 0, tmp_path)
    assert crash is not None and crash.kind == ("probe", "KeyError", "'boom'")

    def spins(value, folder):
        while True:
            pass

    hang = run_one(FuzzTarget("spin", st.just(0), spins, (), time_limit_s=0.05), 0, tmp_path)
    assert hang is not None and hang.kind[1] == "FuzzHang"
    assert list(tmp_path.iterdir()) == []  # each input's folder is removed
