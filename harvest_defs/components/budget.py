"""A ``ClaudeBatchHarvest``'s budgets: ``max_usd`` per submit run, ``max_usd_total`` per instance.

Both compare *upper-bound* estimates (every request uses its whole ``max_tokens``, the prefix as a cache
write) with the limit before anything is sent, so a run over budget pays nothing. The cumulative total is
the sum of what this instance's earlier submit runs recorded as sent (``est_usd_sent`` in their
materialization metadata, read from Dagster's event log), so it needs no extra state and survives
restarts; what the API really billed is lower, and is in each collect's ``est_usd``.
"""

import dagster as dg

from harvest_defs.components.harvest_spec import HarvestSpec
from harvest_defs.defs.metadata import as_metadata

SENT_KEY = "est_usd_sent"
MAX_RECORDS = 10_000


def spent_before(instance: dg.DagsterInstance, spec: HarvestSpec) -> float:
    """The upper-bound USD of every request this instance's earlier submit runs sent."""
    records = instance.fetch_materializations(
        dg.AssetKey(spec.submit_name), limit=MAX_RECORDS, ascending=False
    ).records
    total = 0.0
    for record in records:
        materialization = record.asset_materialization
        value = materialization.metadata.get(SENT_KEY) if materialization is not None else None
        if value is not None and isinstance(value.value, int | float):
            total += float(value.value)
    return total


def check_budget(spec: HarvestSpec, est: float, sending: int, estimate: dict, spent: float | None) -> None:
    """Raise ``dg.Failure`` (with the estimate as metadata) before any request when a budget is exceeded."""
    if spec.max_usd is not None and est > spec.max_usd:
        raise dg.Failure(
            f"{spec.name}: the upper-bound estimate ${est:.6f} for {sending} request(s) is over max_usd "
            f"${spec.max_usd} (per submit run); nothing was sent (raise max_usd or narrow the source)",
            metadata=as_metadata(estimate),
        )
    if spec.max_usd_total is not None and spent is not None and spent + est > spec.max_usd_total:
        raise dg.Failure(
            f"{spec.name}: ${spent:.6f} already sent (upper bound) + ${est:.6f} for {sending} request(s) is "
            f"over max_usd_total ${spec.max_usd_total} (all submit runs of this instance); nothing was sent",
            metadata=as_metadata(estimate),
        )
