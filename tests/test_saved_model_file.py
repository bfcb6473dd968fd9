"""`save_model`, which writes every tool's `model.keras`: the model without the
optimizer's slots (the file prediction and export read), atomically; the live model
keeps training where it was."""

import os
import warnings

import keras
import numpy as np
from model_helpers import tiny_text_model

from keras_bert_impl.training.run_outputs import save_model

TEXTS = ["a b c", "d e", "c a"]


def test_model_file_leaves_out_the_optimizer_slots(tmp_path):
    model = tiny_text_model()
    model.fit(TEXTS, [0, 1, 0], verbose=0)
    model.save(tmp_path / "with_slots.keras")
    save_model(model, str(tmp_path / "model.keras"))
    # Adam's two slots per weight are what the full file adds.
    full = os.path.getsize(tmp_path / "with_slots.keras")
    assert os.path.getsize(tmp_path / "model.keras") < 0.6 * full

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert not [str(w.message) for w in caught if "optimizer" in str(w.message)]
    np.testing.assert_allclose(
        loaded.predict(TEXTS, verbose=0), model.predict(TEXTS, verbose=0), atol=1e-6
    )
    assert loaded.compiled and type(loaded.optimizer) is type(model.optimizer)
    # The live model still has its optimizer state.
    assert model.optimizer.built and int(model.optimizer.iterations) == 1
    model.fit(TEXTS, [0, 1, 0], verbose=0)
    assert int(model.optimizer.iterations) == 2
    assert not os.path.exists(tmp_path / "model.keras.tmp")
