"""Tiny random models built on the spot, so converter tests need no network and no downloads.

`make_tiny_llama` writes a Hugging Face folder the way `save_pretrained` does for a real chat model:
a 2-layer LlamaForCausalLM (hidden 64) in safetensors, and a byte-level BPE tokenizer (~300 tokens)
trained with `tokenizers` on a few sentences, with a ChatML chat template. `make_tiny_bert` does the
same for an embeddings model (BertModel with a WordPiece tokenizer). Both are deterministic (fixed
seed) and take well under a second once torch is imported.
"""

from __future__ import annotations

from pathlib import Path

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Hearth serves language models on your own machine.",
    "A tokenizer turns text into numbers, and a model turns numbers into more numbers.",
    "OpenVINO and ONNX Runtime run models on CPUs, GPUs and NPUs.",
    "Hello, how are you today? I am fine, thank you.",
    "Conversion must keep every answer the same as the original model.",
    "def add(a, b):\n    return a + b\n",
]
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
LLAMA_VOCAB_SIZE = 300
SEED = 0


def make_tiny_llama(path: Path) -> Path:
    """Write a tiny random Llama chat model (config, safetensors, tokenizer) into `path`; return it."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    path.mkdir(parents=True, exist_ok=True)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=LLAMA_VOCAB_SIZE,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(SENTENCES, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        unk_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        model_max_length=256,
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    tokenizer.save_pretrained(path)

    torch.manual_seed(SEED)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        # Larger than Llama's 0.02 so that random logits are not all near-tied: greedy decoding of
        # a faithful conversion then stays on the reference's path.
        initializer_range=0.2,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
        torch_dtype="float32",
    )
    model = LlamaForCausalLM(config).eval()
    model.generation_config.do_sample = False
    model.save_pretrained(path, safe_serialization=True)
    return path


def make_bert_tokenizer(path: Path) -> int:
    """Write a WordPiece (BERT-style) tokenizer trained on SENTENCES into `path`; return its vocab size."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    path.mkdir(parents=True, exist_ok=True)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    backend = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=200, special_tokens=specials, show_progress=False)
    backend.train_from_iterator(SENTENCES, trainer=trainer)
    cls_id, sep_id = backend.token_to_id("[CLS]"), backend.token_to_id("[SEP]")
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=128,
    )
    tokenizer.save_pretrained(path)
    return len(tokenizer)


def make_tiny_bert(path: Path) -> Path:
    """Write a tiny random BERT embeddings model (config, safetensors, WordPiece tokenizer) into `path`."""
    import torch
    from transformers import BertConfig, BertModel

    vocab_size = make_bert_tokenizer(path)
    torch.manual_seed(SEED)
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=128,
        pad_token_id=0,
    )
    BertModel(config).eval().save_pretrained(path, safe_serialization=True)
    return path


def make_tiny_tf_embedder(path: Path) -> Path:
    """Write a tiny TensorFlow SavedModel embedder with a WordPiece tokenizer beside it into `path`.

    TensorFlow is imported only in a child process (tests/hub/tiny_tf.py): in one process with torch
    its bundled protobuf and abseil are not safe to mix. The child also writes `reference.npz` (ids,
    mask and TensorFlow's own output for them) for the fidelity check.
    """
    import subprocess
    import sys

    vocab_size = make_bert_tokenizer(path)
    repo_root = Path(__file__).resolve().parents[2]
    subprocess.run(
        [sys.executable, "-m", "tests.hub.tiny_tf", str(path), str(vocab_size)],
        cwd=repo_root,
        check=True,
        capture_output=True,
    )
    return path
