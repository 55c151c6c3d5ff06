"""A copy of the default GGUF made for tests: three unused control tokens renamed to StarCoder's
fill-in-the-middle tokens, and a chat template that opens a `<think>` block as DeepSeek-R1's does.

The weights are unchanged, so what the model writes is meaningless, but the server must treat it as
a FIM model and a reasoning model: prompts built from the FIM tokens, output split into
`reasoning_content`. Written with the reference `gguf` package's own metadata-copy routine.
"""

from __future__ import annotations

from pathlib import Path

import gguf
from gguf.scripts.gguf_new_metadata import MetadataDetails, copy_with_new_metadata

from hub.models import default_model_path

FIM_TOKENS = ("<fim_prefix>", "<fim_suffix>", "<fim_middle>")
# <repo_name>, <reponame>, <file_sep>: control tokens a chat never uses.
RENAMED_IDS = (3, 4, 5)
THINKING_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n<think>\\n' }}{% endif %}"
)


def write_fim_model(destination: Path) -> Path:
    """Write the test model to `destination` and return it."""
    reader = gguf.GGUFReader(default_model_path())
    tokens = list(reader.fields["tokenizer.ggml.tokens"].contents())
    for token_id, name in zip(RENAMED_IDS, FIM_TOKENS, strict=True):
        tokens[token_id] = name
    arch = reader.fields[gguf.Keys.General.ARCHITECTURE].contents()
    writer = gguf.GGUFWriter(destination, arch=arch, endianess=reader.endianess)
    new = {
        "tokenizer.ggml.tokens": MetadataDetails(gguf.GGUFValueType.ARRAY, tokens, sub_type=gguf.GGUFValueType.STRING),
        gguf.Keys.Tokenizer.CHAT_TEMPLATE: MetadataDetails(gguf.GGUFValueType.STRING, THINKING_TEMPLATE),
    }
    copy_with_new_metadata(reader, writer, new, [])
    return destination
