"""Defaults and documented limits of the Message Batches API, in one place.

Why constants and not magic numbers in the code: tests lower the limits (the emulator accepts the same
knobs), the benchmark checks the real ones, and a limit that changes upstream is a one-line edit here.
"""

from __future__ import annotations

import re

PROVIDER = "claude"
MB = 1024 * 1024

# https://docs.claude.com/en/docs/build-with-claude/batch-processing: 100,000 requests or 256 MB per batch.
MAX_REQUESTS_PER_BATCH = 100_000
MAX_BYTES_PER_BATCH = 256 * MB
# Room left in each batch for the JSON envelope ({"requests":[...]}) around the requests we count.
BATCH_ENVELOPE_BYTES = 64

DEFAULT_MAX_TOKENS = 1024
DEFAULT_POLL_INTERVAL = 60.0
# SDK retries (429/5xx, honouring retry-after) for create/retrieve; results downloads get their own.
SDK_MAX_RETRIES = 5
DOWNLOAD_ATTEMPTS = 5

# The API's custom_id rule (a request whose id does not match is rejected at create).
CUSTOM_ID_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
# Keys a prompt mapping may carry: the seed guide's text/custom_id/max_tokens plus per-prompt overrides.
# ``cached_prefix``: a text block sent before ``text`` in the user message with ``cache_control``, so
# many requests about one long document read it from the prompt cache (contextual retrieval, rag/).
PROMPT_KEYS = frozenset({"text", "custom_id", "system", "max_tokens", "temperature", "cached_prefix"})

# Arrow tables handed to dlt hold at most this many rows (in practice one per 8 MB JSON block, ~18k).
# Why not 10k: every chunk rebuilds the custom_id hash set of the manifest for ``index_in``; measured on
# 100k results, parsing took 0.36 s with 10k chunks and 0.27 s with 50k; dlt's load time was the same.
ARROW_CHUNK_ROWS = 50_000

# Prefix and length of generated custom_ids ("req_" + 24 hex of the request's content hash).
GENERATED_ID_PREFIX = "req_"
GENERATED_ID_HEX = 24

# Token estimate before the API counts them (the emulator and Anthropic's guidance: ~4 chars per token).
CHARS_PER_TOKEN = 4

# https://docs.claude.com/en/docs/about-claude/models/overview: every current model has a 200k-token
# context window (1M for some only behind a beta header, which batches here never send). A prompt whose
# estimate plus max_tokens exceeds it is refused before any money is spent.
CONTEXT_WINDOW_TOKENS = 200_000


def context_window(model: str) -> int:
    """The model's context window in tokens (the same for every current model; one place to change)."""
    return CONTEXT_WINDOW_TOKENS


def estimate_prompt_tokens(text: str, system: str | None = None) -> int:
    """The pre-send estimate of a prompt's input tokens (ceil(chars / CHARS_PER_TOKEN))."""
    return -(-(len(text) + len(system or "")) // CHARS_PER_TOKEN)


# Minimum cacheable prompt length per model (tokens), from the prompt-caching page's "Cache limitations"
# table (https://docs.claude.com/en/docs/build-with-claude/prompt-caching): a prefix shorter than this is
# processed without caching even when marked with ``cache_control``, so marking it would only cost bytes.
_MIN_CACHEABLE: tuple[tuple[str, int], ...] = (
    ("claude-opus-4-5", 4096),
    ("claude-opus-4-6", 4096),
    ("claude-haiku-4-5", 4096),
    ("claude-3-5-haiku", 2048),
    ("claude-3-haiku", 2048),
)
DEFAULT_MIN_CACHEABLE = 1024


def min_cacheable_tokens(model: str) -> int:
    """The shortest prefix (tokens) the model caches; 1024 for the models the table does not list."""
    for prefix, minimum in _MIN_CACHEABLE:
        if model.startswith(prefix):
            return minimum
    return DEFAULT_MIN_CACHEABLE
