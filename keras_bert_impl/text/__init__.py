"""In-graph BERT text processing: WordPiece vocabulary, tokenizer, segment packer."""

from keras_bert_impl.text.packer import Packer
from keras_bert_impl.text.tokenizer import Tokenizer
from keras_bert_impl.text.vocab import build_vocabulary

__all__ = ["Packer", "Tokenizer", "build_vocabulary"]
