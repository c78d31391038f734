"""The emulator bills input tokens with the library's estimate (``harvest_defs.harvest.tokens``).

Re-exported here so the emulator's modules keep one import path; the rules are documented there.
"""

from harvest_defs.harvest.tokens import (
    IMAGE_MAX_LONG_EDGE,
    IMAGE_MAX_PIXELS,
    IMAGE_PIXELS_PER_TOKEN,
    IMAGE_UNKNOWN_TOKENS,
    Segment,
    block_tokens,
    count_input_tokens,
    count_tokens,
    decode_base64,
    image_size,
    image_tokens,
    image_tokens_for_size,
    prompt_blocks,
    segments,
)

__all__ = [
    "IMAGE_MAX_LONG_EDGE",
    "IMAGE_MAX_PIXELS",
    "IMAGE_PIXELS_PER_TOKEN",
    "IMAGE_UNKNOWN_TOKENS",
    "Segment",
    "block_tokens",
    "count_input_tokens",
    "count_tokens",
    "decode_base64",
    "image_size",
    "image_tokens",
    "image_tokens_for_size",
    "prompt_blocks",
    "segments",
]
