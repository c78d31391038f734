"""Component types: harvests declared in ``defs.yaml`` (``dg list components`` shows them).

Registered through the ``dagster_dg_cli.registry_modules`` entry point as ``harvest_defs`` (the top-level
package re-exports these names lazily), so ``type: harvest_defs.ClaudeBatchHarvest`` works in YAML.
"""

from harvest_defs.components.claude_batch_harvest import ClaudeBatchHarvest
from harvest_defs.components.rag_index import RagIndex
from harvest_defs.components.voyage_embeddings import VoyageEmbeddings

__all__ = ["ClaudeBatchHarvest", "RagIndex", "VoyageEmbeddings"]
