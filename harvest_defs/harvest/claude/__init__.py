"""Claude Message Batches harvesting: validation, splitting, ledger-backed submit/poll/collect, dlt resource.

Importing this package does not import the ``anthropic`` SDK (about 2.7 s); that happens on the first
API call.
"""

from harvest_defs.harvest.claude.errors import BatchLostError, ResultsArchivedError
from harvest_defs.harvest.claude.harvester import ClaudeBatchHarvester, SubmitReport, split_requests
from harvest_defs.harvest.claude.prompts import InvalidPrompt, InvalidPromptsError, prepare_prompts
from harvest_defs.harvest.claude.resource import claude_message_batches
from harvest_defs.harvest.claude.results import CLAUDE_MESSAGES_SCHEMA
from harvest_defs.harvest.progress import BatchProgress

__all__ = [
    "CLAUDE_MESSAGES_SCHEMA",
    "BatchLostError",
    "BatchProgress",
    "ClaudeBatchHarvester",
    "InvalidPrompt",
    "InvalidPromptsError",
    "ResultsArchivedError",
    "SubmitReport",
    "claude_message_batches",
    "prepare_prompts",
    "split_requests",
]
