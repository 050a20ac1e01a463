"""Tokenizers for the student: a small byte-level BPE trained on the mixture (``tiny``), or the
Hugging Face tokenizer shipped in an imported checkpoint folder (``tokenizer.json``).

Special ids follow PaliGemma: ``<pad>`` 0, ``<eos>`` 1, ``<bos>`` 2, ``<unk>`` 3, ``<image>`` 4 (the
image placeholder is only used in HF-style inputs; our model takes image embeddings directly).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

SPECIALS = ("<pad>", "<eos>", "<bos>", "<unk>", "<image>")


class TokenizerError(ValueError):
    """A tokenizer file is missing or lacks a required special token."""


@dataclass(frozen=True, kw_only=True)
class VLMTokenizer:
    """A ``tokenizers.Tokenizer`` plus the ids the model needs. ``encode`` adds no special tokens."""

    tokenizer: Tokenizer
    pad_id: int
    eos_id: int
    bos_id: int

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids`` up to the first eos; pad/bos are dropped."""
        out: list[int] = []
        for i in ids:
            i = int(i)
            if i == self.eos_id:
                break
            if i not in (self.pad_id, self.bos_id):
                out.append(i)
        return self.tokenizer.decode(out, skip_special_tokens=True)

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / "tokenizer.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save(str(path))
        return path


def _wrap(tok: Tokenizer, *, pad: str, eos: str, bos: str, source: str) -> VLMTokenizer:
    ids = {}
    for name in (pad, eos, bos):
        i = tok.token_to_id(name)
        if i is None:
            raise TokenizerError(f"tokenizer {source} has no {name!r} token")
        ids[name] = i
    return VLMTokenizer(tokenizer=tok, pad_id=ids[pad], eos_id=ids[eos], bos_id=ids[bos])


def train_bpe(texts: Iterable[str], vocab_size: int = 1024, extra_tokens: Sequence[str] = ()) -> VLMTokenizer:
    """Train a byte-level BPE on ``texts`` (the mixture's prefixes and suffixes); ids 0-4 are special.

    ``extra_tokens`` (e.g. ``<loc0000>``… location tokens) become single, *non-special* tokens after
    the learnt merges, so decoding keeps them; the total vocabulary stays within ``vocab_size``.
    """
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size - len(extra_tokens), special_tokens=list(SPECIALS),
                                  show_progress=False, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer)
    if extra_tokens:
        tok.add_tokens(list(extra_tokens))
    return _wrap(tok, pad="<pad>", eos="<eos>", bos="<bos>", source="(trained)")


def load_tokenizer(folder: str | Path) -> VLMTokenizer:
    """Load ``folder/tokenizer.json`` (ours, or a PaliGemma/Gemma one: ``<pad>``, ``<eos>``, ``<bos>``)."""
    path = Path(folder) / "tokenizer.json"
    if not path.is_file():
        raise TokenizerError(f"no tokenizer.json in {folder} (a checkpoint folder needs its tokenizer; "
                             "for Hugging Face models save the tokenizer with save_pretrained into the same folder)")
    return _wrap(Tokenizer.from_file(str(path)), pad="<pad>", eos="<eos>", bos="<bos>", source=str(path))
