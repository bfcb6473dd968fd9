"""Keras layers of BERT (keras + keras.ops only, so every backend runs them)."""

from keras_bert_impl.layers.embeddings import BertEmbeddings
from keras_bert_impl.layers.encoder_block import TransformerEncoderBlock
from keras_bert_impl.layers.masked_lm_head import MaskedLMHead
from keras_bert_impl.layers.position_embedding import PositionEmbedding
from keras_bert_impl.layers.self_attention import MultiHeadSelfAttention
