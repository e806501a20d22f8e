"""Build a tiny Phi-3-architecture causal LM offline: the local backend's foundation model.

A ``Phi3Config`` with a few hundred thousand parameters, a byte-level BPE tokenizer trained with
``tokenizers`` on synthetic chat text, and a Phi-3 style chat template. No hub download is attempted.
"""

from __future__ import annotations

from pathlib import Path

from pipelines.chat_format import PHI3_CHAT_TEMPLATE, SPECIAL_TOKENS
from pipelines.synth import make_rows


def build_tokenizer(vocab_size: int = 512):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    corpus = []
    for row in make_rows(2000, seed=123):
        corpus += [m["content"] for m in row["messages"]]  # type: ignore[attr-defined]
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|pad|>", additional_special_tokens=SPECIAL_TOKENS[2:]
    )
    fast.chat_template = PHI3_CHAT_TEMPLATE
    return fast


def build_tiny_phi3(out_dir: str | Path, seed: int = 0) -> Path:
    """Write a randomly initialised tiny Phi-3 model and its tokenizer to ``out_dir``."""
    import torch
    from transformers import GenerationConfig, Phi3Config, Phi3ForCausalLM

    torch.manual_seed(seed)
    tokenizer = build_tokenizer()
    end_id = tokenizer.convert_tokens_to_ids("<|end|>")
    config = Phi3Config(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=[tokenizer.eos_token_id, end_id],
        tie_word_embeddings=False,
    )
    model = Phi3ForCausalLM(config)
    model.generation_config = GenerationConfig(
        eos_token_id=[tokenizer.eos_token_id, end_id], pad_token_id=tokenizer.pad_token_id, max_new_tokens=64
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
