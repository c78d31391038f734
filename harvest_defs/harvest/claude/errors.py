"""Per-batch failures the caller must tell apart from transient ones: the batch can never be read again."""

from __future__ import annotations


class ResultsArchivedError(RuntimeError):
    """The batch's results are gone (Anthropic keeps them 29 days); nothing can be downloaded again.

    Raised instead of the SDK's generic "no results_url" error so callers can tell an expired archive
    (resubmit, paying again, deliberately) from a transient failure (retry). The batch stays uncollected.
    """

    def __init__(self, batch_id: str, archived_at: str) -> None:
        self.batch_id = batch_id
        super().__init__(
            f"results of batch {batch_id} were archived at {archived_at} and can no longer be downloaded; "
            "resubmit its requests to get them again"
        )


class BatchLostError(RuntimeError):
    """The API no longer knows the batch (404): it is marked lost in the ledger and skipped from now on."""

    def __init__(self, batch_id: str, reason: str) -> None:
        self.batch_id = batch_id
        super().__init__(reason)
