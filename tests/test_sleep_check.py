"""No test sleeps a fixed time: every sleep in tests/ is the pause of a poll with a deadline."""

from __future__ import annotations

from textwrap import dedent

from tests.sleep_check import TESTS, check, fixed_sleeps


def lines_flagged(source: str) -> list[int]:
    return [found.line for found in fixed_sleeps(dedent(source))]


def test_the_tests_have_no_fixed_sleeps() -> None:
    found = check([TESTS])
    assert found == [], "\n".join(map(str, found))


def test_a_sleep_to_let_something_happen_is_flagged() -> None:
    assert lines_flagged("""\
        import time
        from time import sleep as nap
        def test_x():
            time.sleep(2.0)
            nap(0.1)
            for _ in range(10):
                time.sleep(0.1)
            while True:
                time.sleep(0.1)
        """) == [4, 5, 7, 9]


def test_a_poll_with_a_deadline_and_a_marked_pacing_sleep_pass() -> None:
    assert (
        lines_flagged("""\
        import time
        def wait_for(predicate, timeout_s):
            deadline = time.monotonic() + timeout_s
            while not predicate():
                assert time.monotonic() < deadline
                time.sleep(0.05)
        def until(predicate, timeout_s):
            end = time.monotonic() + timeout_s
            while time.monotonic() < end and not predicate():
                time.sleep(0.05)
        def publish(rate):
            time.sleep(1 / rate)  # pacing: a device that sends at its own rate
        """)
        == []
    )


def test_a_deadline_outside_the_loop_does_not_excuse_a_sleep_inside_a_nested_function() -> None:
    assert lines_flagged("""\
        import time
        def test_x():
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                def later():
                    time.sleep(1)
                later()
        """) == [6]
