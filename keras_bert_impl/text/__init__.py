"""In-graph BERT text processing: WordPiece vocabulary, tokenizer, segment packer."""

from keras_bert_impl.text.packer import Packer
from keras_bert_impl.text.tokenizer import Tokenizer

__all__ = ["Packer", "Tokenizer"]
