import keras
import numpy as np
import pytest

from keras_bert_impl.layers import BertEmbeddings
from keras_bert_impl.layers import MultiHeadSelfAttention
from keras_bert_impl.layers import PositionEmbedding
from keras_bert_impl.layers import TransformerEncoderBlock
from keras_bert_impl.layers.activations import get_activation

LAYERS = [
    (PositionEmbedding, dict(max_length=16), (2, 5, 8)),
    (MultiHeadSelfAttention, dict(num_heads=2, head_size=4, dropout=0.0), (2, 5, 8)),
    (
        TransformerEncoderBlock,
        dict(
            num_heads=2,
            hidden_size=8,
            intermediate_size=16,
            hidden_act="gelu_approximate",
        ),
        (2, 5, 8),
    ),
]


@pytest.mark.parametrize("cls, kwargs, shape", LAYERS)
def test_layer_config_round_trip_rebuilds_an_identical_layer(cls, kwargs, shape):
    layer = cls(**kwargs)
    x = np.random.default_rng(0).normal(size=shape).astype("float32")
    out = layer(x)
    clone = cls.from_config(layer.get_config())
    clone(x)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(np.asarray(clone(x)), np.asarray(out))
    assert clone.get_config() == layer.get_config()


def test_embeddings_config_round_trip():
    layer = BertEmbeddings(50, 8, 16, 2, dropout=0.0)
    ids = np.array([[1, 2, 3]])
    out = layer(ids, np.zeros_like(ids))
    assert tuple(out.shape) == (1, 3, 8)
    clone = BertEmbeddings.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert [
        sub.name
        for sub in (
            clone.token_embedding,
            clone.position_embedding,
            clone.segment_embedding,
            clone.embeddings_layer_norm,
        )
    ] == [
        "token_embedding",
        "position_embedding",
        "segment_embedding",
        "embeddings_layer_norm",
    ]


def test_padded_keys_receive_no_attention():
    layer = MultiHeadSelfAttention(num_heads=2, head_size=4, dropout=0.0)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1, 6, 8)).astype("float32")
    mask = np.array([[1, 1, 1, 1, 0, 0]])
    out = np.asarray(layer(x, mask))
    x_changed = x.copy()
    x_changed[:, 4:] = rng.normal(size=(1, 2, 8))
    out_changed = np.asarray(layer(x_changed, mask))
    np.testing.assert_allclose(out[:, :4], out_changed[:, :4], atol=1e-6)
    # Without the mask the same change does reach the real positions.
    unmasked = np.asarray(layer(x)) - np.asarray(layer(x_changed))
    assert np.abs(unmasked[:, :4]).max() > 1e-3 * np.abs(out[:, :4]).max()


def test_gelu_variants_differ_as_documented():
    x = keras.ops.convert_to_tensor(np.linspace(-3, 3, 13).astype("float32"))
    exact = np.asarray(get_activation("gelu")(x))
    approx = np.asarray(get_activation("gelu_approximate")(x))
    from math import erf, sqrt

    reference = np.array(
        [v * 0.5 * (1 + erf(v / sqrt(2))) for v in np.linspace(-3, 3, 13)]
    )
    np.testing.assert_allclose(exact, reference, atol=1e-6)
    assert 1e-5 < np.abs(exact - approx).max() < 1e-2
    with pytest.raises(ValueError, match="mish"):
        get_activation("mish")


def test_masked_lm_head_config_round_trip_on_its_own():
    from keras_bert_impl.layers import MaskedLMHead

    embedding = keras.layers.Embedding(50, 8, name="token_embedding")
    embedding.build((None,))
    head = MaskedLMHead(embedding, hidden_act="gelu_approximate")
    states = np.random.default_rng(0).normal(size=(2, 5, 8)).astype("float32")
    positions = np.array([[1, 3], [0, 4]])
    out = head(states, positions)
    clone = MaskedLMHead.from_config(head.get_config())
    clone.token_embedding.build((None,))
    clone(states, positions)
    clone.set_weights(head.get_weights())
    np.testing.assert_array_equal(np.asarray(clone(states, positions)), np.asarray(out))
    assert clone.get_config() == head.get_config()


def test_a_users_model_built_from_our_layers_saves_and_loads(tmp_path):
    """Every layer is registered: no custom_objects needed to load."""
    token_ids = keras.Input((6,), dtype="int32", name="token_ids")
    segment_ids = keras.Input((6,), dtype="int32", name="segment_ids")
    hidden = BertEmbeddings(40, 8, 16, 2, dropout=0.0)(token_ids, segment_ids)
    hidden = TransformerEncoderBlock(
        num_heads=2, hidden_size=8, intermediate_size=16, hidden_dropout=0.0
    )(hidden)
    hidden = MultiHeadSelfAttention(num_heads=2, head_size=4, dropout=0.0)(hidden)
    hidden = hidden + PositionEmbedding(max_length=16)(hidden)
    model = keras.Model([token_ids, segment_ids], keras.layers.Dense(3)(hidden))
    rng = np.random.default_rng(1)
    inputs = [rng.integers(1, 40, (3, 6)).astype("int32"), np.zeros((3, 6), "int32")]
    expected = np.asarray(model(inputs))
    path = str(tmp_path / "users_model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(np.asarray(loaded(inputs)), expected, atol=1e-6)
