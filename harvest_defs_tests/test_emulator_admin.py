"""The emulator's admin surface: stats, config and reset work over real HTTP."""

from __future__ import annotations

import httpx
import pytest

from harvest_defs.emulator import EmulatorServer


def test_config_roundtrip_and_reset(emulator: EmulatorServer) -> None:
    r = httpx.post(f"{emulator.url}/_emulator/config", json={"latency_ms": 1.5, "voyage_rpm": 7})
    assert r.status_code == 200
    assert emulator.config.latency_ms == 1.5
    assert httpx.get(f"{emulator.url}/_emulator/config").json()["voyage_rpm"] == 7
    emulator.state.count("probe", 3)
    assert httpx.get(f"{emulator.url}/_emulator/stats").json() == {"probe": 3}
    httpx.post(f"{emulator.url}/_emulator/reset")
    assert httpx.get(f"{emulator.url}/_emulator/stats").json() == {}


def test_unknown_config_key_is_rejected(emulator: EmulatorServer) -> None:
    r = httpx.post(f"{emulator.url}/_emulator/config", json={"latency": 1})
    assert r.status_code == 400
    assert "latency" in r.json()["detail"]
    with pytest.raises(ValueError):
        emulator.configure(no_such_knob=True)
