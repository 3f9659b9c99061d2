"""`make bench` keeps working: each benchmark runs (small sizes) and prints the figures
it promises as JSON. Their values are the benchmarks' business, not the tests'."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent.parent / "bench"


def run_bench(script: str, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        capture_output=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_latency_bench_reports_both_brokers() -> None:
    out = run_bench("latency.py", "--requests", "5", "--rounds", "2")
    assert out["requests"] == 5
    assert len(out["nodelay_broker"]["rounds"]) == 2
    for run, nodelay in (("nodelay_broker", True), ("default_broker", False)):
        figures = out[run]
        assert figures["broker_set_tcp_nodelay"] is nodelay
        for part in ("raw_at", "broker_echo", "modem_at_request"):
            assert 0 < figures[part]["p50_ms"] <= figures[part]["p99_ms"], (run, part)
        assert 0 < figures["start_to_online_s"] < 30
        assert {"p50_ms", "p99_ms"} <= figures["bridge_overhead"].keys()
        assert isinstance(figures["meets_target"], bool)
    floor = out["nodelay_broker"]["floor"]  # bench/relay.py answered every request
    assert 0 < floor["modem_at_request"]["p50_ms"] <= floor["modem_at_request"]["p99_ms"]
    assert "floor" not in out["default_broker"]
    assert out["nodelay_broker"]["machine_noise"]["gaps_over_1ms_per_s"] >= 0


def test_engine_bench_reports_round_trips_download_and_idle_cpu() -> None:
    small = ["--mib", "1", "--runs", "1", "--round-trips", "20", "--rounds", "1"]
    out = run_bench("engine.py", *small, "--idle", "0.5")
    rates = out["at_round_trips"]["per_second"]
    assert set(rates) == {"sync_pyserial", "gsmmodem_serialcomms", "engine"}
    assert all(rate > 0 for rate in rates.values())
    assert out["download"]["payload_bytes"] == 1024 * 1024
    assert out["download"]["engine_MBps"] > 0
    assert len(out["download"]["per_pair_engine_vs_baseline"]) == 1  # --runs 1
    assert out["idle"]["seconds"] == 0.5
    assert out["idle"]["cpu_percent_of_a_core"] >= 0


def test_pool_bench_reports_one_two_and_four_bridges() -> None:
    out = run_bench("pool.py", "--jobs", "12", "--op-ms", "20")
    assert [run["bridges"] for run in out["runs"]] == [1, 2, 4]
    for run in out["runs"]:
        assert run["jobs"] == 12 and run["jobs_per_second"] > 0
        assert sum(run["served_per_bridge"].values()) == 12
    assert set(out["speedup"]) == {"2", "4"}
    assert isinstance(out["meets_target"], bool)
