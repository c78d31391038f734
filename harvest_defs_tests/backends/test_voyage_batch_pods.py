"""A Voyage batch submitted in one pod is collected in another with no shared disk: the manifest and the
output file travel through object storage (moto S3), the ledger through Postgres; nothing is paid twice."""

from __future__ import annotations

from pathlib import Path

import boto3
import pyarrow as pa
import pytest

from harvest_defs.emulator import EmulatorServer
from harvest_defs.harvest.backends import STORAGE_ENV, BackendSettings, open_ledger
from harvest_defs.harvest.voyage import VoyageBatchHarvester
from harvest_defs_tests.conftest import TEST_VOYAGE_KEY
from harvest_defs_tests.harvest.voyage_kill_submit import texts


def _pod(emulator: EmulatorServer, home: Path, settings: BackendSettings) -> VoyageBatchHarvester:
    return VoyageBatchHarvester(
        api_key=TEST_VOYAGE_KEY,
        base_url=emulator.voyage_base_url,
        output_dimension=256,
        ledger_path=open_ledger(home / "ledger.sqlite", settings),
        raw_dir=home / "raw",
        poll_interval=0.05,
    )


def test_a_batch_submitted_in_one_pod_is_collected_in_another(
    emulator: EmulatorServer,
    pg_env: BackendSettings,
    s3_env: str,
    s3_endpoint: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(STORAGE_ENV, s3_env)
    settings = BackendSettings.resolve()
    inputs = texts(12)
    submit_pod = _pod(emulator, tmp_path / "pod-submit", settings)
    report = submit_pod.submit(inputs, partition_key="p1")
    (batch_id,) = report.batch_ids
    submit_pod.wait([batch_id])

    collect_home = tmp_path / "pod-collect"
    collect_pod = _pod(emulator, collect_home, settings)
    table = pa.concat_tables(list(collect_pod.collect(batch_id)))  # whole: outcomes are recorded at the end
    collect_pod.mark_collected(batch_id)
    assert sorted(table.column("embedding_id").to_pylist()) == sorted(t["id"] for t in inputs)
    assert (collect_home / "raw" / "voyage" / f"{batch_id}.jsonl").exists()  # raw results kept first

    bucket, prefix = s3_env.removeprefix("s3://").split("/", 1)
    listed = boto3.client("s3", endpoint_url=s3_endpoint).list_objects_v2(Bucket=bucket, Prefix=prefix)
    keys = {item["Key"] for item in listed.get("Contents", [])}
    assert f"{prefix}/raw/voyage/{batch_id}.jsonl" in keys  # the output, for any later pod

    # A third pod re-collects from object storage alone, and a resubmit anywhere sends nothing.
    downloads = emulator.stats().get("voyage_results_downloads")
    assert downloads == 1  # the collect pod downloaded it once
    again = pa.concat_tables(list(_pod(emulator, tmp_path / "pod-3", settings).collect(batch_id)))
    assert again.num_rows == table.num_rows
    assert emulator.stats().get("voyage_results_downloads") == downloads
    resubmit = _pod(emulator, tmp_path / "pod-4", settings).submit(inputs, partition_key="p1")
    assert (resubmit.requests_sent, resubmit.requests_cached) == (0, 12)
    assert emulator.stats()["voyage_batches_created"] == 1
