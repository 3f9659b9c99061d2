"""The watchdog's rule for a running job (bridge.liveness), on a fake clock."""

from __future__ import annotations

from bridge.liveness import Liveness
from tests.mqtt.test_progress import Clock  # a settable fake clock


def test_silence_within_a_declared_wait_is_not_stuck_past_it_is() -> None:
    clock = Clock()
    job = Liveness(clock)
    job.waiting(3600)  # an e-mail's own timeout, say
    assert job.stuck_for(clock.now + 3600 + 30, floor=300) is None
    assert job.stuck_for(clock.now + 3600 + 31, floor=300) == 3631


def test_out_of_any_wait_request_timeout_and_its_grace_apply() -> None:
    clock = Clock()
    job = Liveness(clock)
    job.waiting(3600)
    job.beat()  # the answer came: no wait now
    assert job.stuck_for(clock.now + 2.0, floor=1) is None
    assert job.stuck_for(clock.now + 2.1, floor=1) is not None
    assert job.stuck_for(clock.now + 330, floor=300) is None  # grace: at most 30 s
    assert job.stuck_for(clock.now + 331, floor=300) == 331


def test_progress_keeps_a_long_job_alive_and_its_wait_goes_on() -> None:
    clock = Clock()
    job = Liveness(clock)
    job.waiting(90)  # a transfer's silence bound
    for _ in range(1000):  # 1000 s of a slow transfer
        clock.now += 1
        job.alive()
        assert job.stuck_for(clock.now, floor=1) is None
    assert job.stuck_for(clock.now + 90 + 30, floor=1) is None
    assert job.stuck_for(clock.now + 90 + 31, floor=1) is not None
