"""Voyage real-time throughput against the emulator at 300 RPM / 1M TPM with 100 ms latency.

Run: ``uv run python benchmarks/voyage_throughput.py [--texts 20000]`` (about 5-6 minutes). Writes
``benchmarks/results/voyage_throughput.json``.

- **ours**: ``RealtimeEmbedder`` with the limits configured (rpm=300, tpm=1M): concurrent requests packed
  to 1/20 of the TPM budget, paced by the sliding-window limiter. 20,000 texts of 200 tokens are 4M
  tokens; a 60 s sliding window admits the first 1M at t=0, so 180 s is the best possible time.
- **baseline**: the seed guide's way, faithfully (:func:`run_baseline`), against the *same* rate-limited
  emulator from a fresh window: 128 texts per request one after another, 100 ms sleep, on an error one
  retry after ``2**batch_index`` s, then the batch is given up. Capped at ``--baseline-cap-s``: a back-off
  that would sleep past the cap ends the run as *stalled* and reports what it achieved (texts embedded,
  lost, not reached, tokens/min over the capped window) plus the time it provably needs at least.
- **baseline on a busy key**: the same loop started straight after ours, while the window is still full
  (a second run on a shared key): where the seed's short early back-offs give batches up, losing texts.

The emulator runs in its own process so its CPU work (hashing 4M tokens of text) does not share a GIL with
the client being measured.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import random
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx
from _emulator import free_port, serve

RPM, TPM, LATENCY_MS = 300, 1_000_000, 100
CHARS = 800  # 200 tokens at the emulator's 4 chars/token
RESULTS = Path(__file__).parent / "results" / "voyage_throughput.json"


def make_texts(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(5000)]
    out = []
    for i in range(n):
        words: list[str] = [f"doc{i}"]
        while sum(len(w) + 1 for w in words) < CHARS:
            words.append(rng.choice(vocab))
        out.append(" ".join(words)[:CHARS].ljust(CHARS, "x"))
    return out


def _admin(url: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    if body is None:
        response = httpx.get(f"{url}{path}", timeout=30)
    else:
        response = httpx.post(f"{url}{path}", json=body, timeout=30)
    response.raise_for_status()
    return dict(response.json())


def run_ours(base_url: str, texts: list[str]) -> dict[str, Any]:
    from harvest_defs.harvest.voyage.client import resolve_credentials
    from harvest_defs.harvest.voyage.packing import prepare_inputs
    from harvest_defs.harvest.voyage.realtime import RealtimeEmbedder
    from harvest_defs.harvest.voyage.settings import model_spec

    embedder = RealtimeEmbedder(
        resolve_credentials("pa-bench", base_url), "voyage-3.5", rpm=RPM, tpm=TPM, max_concurrency=8
    )
    inputs = prepare_inputs(texts, model_spec("voyage-3.5")).inputs
    started = time.perf_counter()
    rows = sum(t.num_rows for t in embedder.embed(inputs))
    elapsed = time.perf_counter() - started
    r = embedder.report
    return {
        "texts": len(texts),
        "rows": rows,
        "requests": r.requests,
        "failures": len(r.failures),
        "client_429s_absorbed": r.throttled,
        "billed_tokens": r.tokens,
        "elapsed_s": round(elapsed, 2),
        "limiter": {} if embedder.limiter is None else asdict(embedder.limiter.stats),
    }


def run_baseline(base_url: str, texts: list[str], cap_s: float) -> dict[str, Any]:
    """The seed guide's loop, faithfully, against the same rate-limited emulator, for at most ``cap_s``.

    Per batch of 128 (``batch_index`` from 0): embed; on any error sleep ``2**batch_index`` s and try once
    more; if that fails too, give the batch up (its texts are lost) and go on; 100 ms sleep between
    requests. voyageai's own ``max_retries`` is 0 (one attempt), as the seed used it. A back-off sleep that
    would run past the cap is not slept: the run stops there, *stalled*, and its window is counted as the
    full cap (it would still be asleep at the cap), so figures per minute are not flattered.
    """
    import voyageai

    client = voyageai.Client(api_key="pa-bench", base_url=base_url)
    started = time.perf_counter()
    embedded = lost = tokens = requests = errors = 0
    stalled: dict[str, Any] | None = None
    batches = range(0, len(texts), 128)
    for batch_index, start in enumerate(batches):
        if time.perf_counter() - started >= cap_s:
            break
        batch = texts[start : start + 128]
        try:
            requests += 1
            result = client.embed(batch, model="voyage-3.5", input_type="document")
        except Exception:  # the seed catches everything
            errors += 1
            backoff = 2**batch_index
            now = time.perf_counter() - started
            if now + backoff > cap_s:
                stalled = {"batch_index": batch_index, "at_s": round(now, 2), "pending_sleep_s": backoff}
                break
            time.sleep(backoff)
            try:
                requests += 1
                result = client.embed(batch, model="voyage-3.5", input_type="document")
            except Exception:  # the seed catches everything
                errors += 1
                lost += len(batch)  # the seed gives the batch up and moves on
                time.sleep(0.1)
                continue
        embedded += len(batch)
        tokens += result.total_tokens
        time.sleep(0.1)
    elapsed = time.perf_counter() - started
    window_s = cap_s if stalled is not None else elapsed
    finished = stalled is None and embedded + lost == len(texts)
    out: dict[str, Any] = {
        "cap_s": cap_s,
        "batches_total": len(batches),
        "http_requests": requests,
        "errors": errors,
        "texts_embedded": embedded,
        "texts_lost_to_give_ups": lost,
        "texts_not_reached": len(texts) - embedded - lost,
        "tokens": tokens,
        "real_elapsed_s": round(elapsed, 2),
        "window_s": round(window_s, 2),
        "tokens_per_min": round(tokens / window_s * 60),
        "stalled": stalled,
        "finished": finished,
    }
    if stalled is not None:
        # Lower bound for the whole input, faithfully: it must sleep the pending back-off before batch
        # ``batch_index`` is even retried. And the charitable figure: its throughput over the capped
        # window, as if it kept that pace to the end (it cannot: every later 429 sleeps even longer).
        out["faithful_time_lower_bound_s"] = stalled["at_s"] + stalled["pending_sleep_s"]
        out["faithful_time_lower_bound_years"] = round(out["faithful_time_lower_bound_s"] / 31_557_600, 1)
    out["linear_extrapolation_s"] = round(window_s * len(texts) / max(1, embedded), 1) if embedded else None
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--texts", type=int, default=20_000)
    parser.add_argument("--baseline-cap-s", type=float, default=120.0)
    parser.add_argument("--warm-cap-s", type=float, default=90.0)
    parser.add_argument("--skip-ours", action="store_true", help="baseline only (for checking it)")
    args = parser.parse_args()
    port = free_port()
    server = multiprocessing.get_context("spawn").Process(target=serve, args=(port,), daemon=True)
    server.start()
    url, base_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}/v1"
    for _ in range(300):
        try:
            _admin(url, "/_emulator/stats")
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    limits = {"voyage_rpm": RPM, "voyage_tpm": TPM, "latency_ms": LATENCY_MS}
    try:
        texts = make_texts(args.texts)
        _admin(url, "/_emulator/config", limits)
        ours: dict[str, Any] = {}
        warm: dict[str, Any] = {}
        if not args.skip_ours:
            _admin(url, "/_emulator/reset", {})
            ours = run_ours(base_url, texts)
            ours["server"] = _admin(url, "/_emulator/stats")
            # The seed's give-ups show when its key is busy: start it straight after ours (no reset, so
            # the window still holds ours' last minute), as a second run on a shared key would.
            warm = run_baseline(base_url, texts, args.warm_cap_s)
            after = _admin(url, "/_emulator/stats")
            warm["server"] = {k: v - ours["server"].get(k, 0) for k, v in after.items()}
        _admin(url, "/_emulator/reset", {})  # same limits, fresh window: both start from an idle key
        baseline = run_baseline(base_url, texts, args.baseline_cap_s)
        baseline["server"] = _admin(url, "/_emulator/stats")
    finally:
        server.terminate()
        server.join(10)
    if args.skip_ours:
        print(json.dumps(baseline, indent=2))
        return
    tokens = ours["server"]["voyage_tokens"]
    minutes = ours["elapsed_s"] / 60
    tpm_achieved = tokens / minutes
    # With a 60 s sliding window the first minute's budget is available at t=0, so N tokens can finish
    # no earlier than floor((N - 1) / TPM) minutes (plus one request's latency): the optimum to compare to.
    optimum_s = math.floor((tokens - 1) / TPM) * 60 + LATENCY_MS / 1000
    lower_bound = baseline.get("faithful_time_lower_bound_s")
    baseline_time = baseline["real_elapsed_s"] if baseline["finished"] else lower_bound
    result = {
        "setup": {
            "texts": args.texts,
            "tokens_per_text": CHARS // 4,
            "emulator": limits,
            "binding_limit": "tpm" if tokens / TPM >= ours["requests"] / RPM else "rpm",
        },
        "ours": ours,
        "baseline_seed_sequential_128": baseline,
        "baseline_seed_on_a_busy_key": warm,
        # A sliding window that starts idle lets a whole minute's budget through at t=0, so a plain
        # average over a few minutes exceeds the limit (>1.0). The fair measure of saturation counts only
        # what came after that free first minute: (tokens - TPM) over the run, as a share of TPM per
        # minute. The sliding-window optimum scores ~1.0 on it.
        "achieved_fraction_of_tpm_limit": round((tokens - TPM) / (TPM * minutes), 3),
        "average_tokens_per_min_incl_initial_burst": round(tpm_achieved),
        "average_fraction_of_tpm_limit_incl_initial_burst": round(tpm_achieved / TPM, 3),
        "requests_per_min": round(ours["requests"] / minutes, 1),
        "sliding_window_optimum_s": optimum_s,
        "efficiency_vs_sliding_window_optimum": round(optimum_s / ours["elapsed_s"], 3),
        "over_optimum_s": round(ours["elapsed_s"] - optimum_s, 1),
        "baseline_time_over_ours_same_work": (
            float(f"{baseline_time / ours['elapsed_s']:.3g}") if baseline_time is not None else None
        ),
        "baseline_time_over_ours_linear_extrapolation": (
            round(baseline["linear_extrapolation_s"] / ours["elapsed_s"], 2)
            if baseline["linear_extrapolation_s"]
            else None
        ),
        "baseline_fraction_of_tpm_limit_in_window": round(baseline["tokens_per_min"] / TPM, 3),
        "baseline_texts_lost": baseline["texts_lost_to_give_ups"],
        "baseline_texts_lost_on_a_busy_key": warm["texts_lost_to_give_ups"],
        "baseline_texts_not_embedded_at_cap": baseline["texts_lost_to_give_ups"]
        + baseline["texts_not_reached"],
        "measured_at_unix": int(time.time()),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
