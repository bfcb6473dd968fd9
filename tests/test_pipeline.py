"""Text → pretraining TFRecords → tf.data → BertPretrainer.fit, end to end."""

import keras
import numpy as np

from keras_bert_impl import BertPretrainer
from keras_bert_impl.data import PretrainingRecipe
from keras_bert_impl.data import create_pretraining_files
from keras_bert_impl.data import pretraining_dataset
from keras_bert_impl.text import Tokenizer
from tests.model_helpers import real_checkpoint_dir
from tests.model_helpers import real_sentences
from tests.model_helpers import tiny_config


def test_raw_text_to_a_pretraining_step(tmp_path):
    sentences = real_sentences()
    documents = [sentences[i : i + 5] for i in range(0, len(sentences), 5)]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join("\n".join(d) for d in documents) + "\n")
    tokenizer = Tokenizer(f"{real_checkpoint_dir()}/vocab.txt")
    recipe = PretrainingRecipe(max_seq_length=32, max_predictions_per_seq=5)
    stats = create_pretraining_files(
        [str(corpus)],
        [str(tmp_path / "train.tfrecord")],
        tokenizer,
        recipe,
        dupe_factor=2,
        random_seed=1,
        workers=1,
    )
    assert stats["instances"] >= 16

    dataset = pretraining_dataset(
        str(tmp_path / "train.tfrecord"),
        batch_size=8,
        seq_length=32,
        max_predictions_per_seq=5,
        seed=0,
    )
    x, y = next(iter(dataset))
    assert tuple(x["token_ids"].shape) == (8, 32)
    assert tuple(y["masked_lm_ids"].shape) == (8, 5)
    model = BertPretrainer(
        tiny_config(vocab_size=tokenizer.vocab_size, max_position_embeddings=32)
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(dataset, steps_per_epoch=3, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
