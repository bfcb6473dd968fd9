"""In-graph BERT text processing: WordPiece vocabulary, tokenizer, segment packer."""

from keras_bert_impl.lazy_exports import lazy_exports

_EXPORTS = {
    "Packer": "keras_bert_impl.text.packer",
    "Tokenizer": "keras_bert_impl.text.tokenizer",
    "build_vocabulary": "keras_bert_impl.text.vocab",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
