"""ONNX Runtime as a peer: a fine-tuned classifier exported to ONNX, run by ORT.

The route users take: the Keras classifier is written as a Hugging Face checkpoint
(`keras_bert_impl.convert.to_huggingface`), loaded as transformers'
`BertForSequenceClassification`, exported with `torch.onnx.export` (dynamic batch and
sequence axes) and, for int8, quantized with ORT's dynamic quantization
(`quantize_dynamic`, int8 weights, activations quantized per call) after ORT's
quantization pre-processing (`quant_pre_process`). ORT multiplies uint8 activations by
int8 weights; without VNNI its kernels add the products in pairs in int16, which
saturate, and ORT's documented answer is `reduce_range` (7-bit weights) on such CPUs:
`export_classifier` sets it from the CPU it runs on (`cpu_features`) unless told.

    path = export_classifier(classifier, "runs/onnx", quantize=True)
    logits = OnnxRuntimeClassifier(path, num_threads=2).predict(token_dict)

The package never imports onnx, onnxruntime or torch; this module does (the `peers`
extra).
"""

import logging
import os
import shutil
import tempfile
import warnings

import numpy as np

FLOAT_FILE = "model.onnx"
QUANTIZED_FILE = "model_quantized.onnx"

# ONNX input name (transformers' names) -> our token dict key.
INPUTS = {
    "input_ids": "token_ids",
    "attention_mask": "padding_mask",
    "token_type_ids": "segment_ids",
}
OUTPUT = "logits"
# The TorchScript exporter: it needs only `onnx`; the dynamo one also onnxscript.
# 17 is the first opset with LayerNormalization.
OPSET = 17


def _check_float_classifier(model):
    from keras_bert_impl import BertClassifier
    from keras_bert_impl.compression import model_precision

    if not isinstance(model, BertClassifier):
        raise ValueError(
            f"export_classifier takes a float32 BertClassifier, got "
            f"{type(model).__name__}."
        )
    precision = model_precision(model)
    if precision != "float32":
        raise ValueError(
            f"export_classifier takes a float32 BertClassifier, got one in "
            f"{precision}; export the float model (ONNX Runtime quantizes it itself "
            "with quantize=True)."
        )


def _example_inputs(config):
    """Two rows, the second padded: the traced graph keeps the attention mask."""
    import torch

    length = min(8, config.max_position_embeddings)
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(
        min(5, config.vocab_size - 1),
        config.vocab_size,
        (2, length),
        generator=generator,
    )
    attention_mask = torch.ones((2, length), dtype=torch.int64)
    attention_mask[1, length // 2 :] = 0
    token_type_ids = torch.zeros((2, length), dtype=torch.int64)
    token_type_ids[:, length // 4 :] = min(1, config.type_vocab_size - 1)
    return {
        "input_ids": input_ids * attention_mask,
        "attention_mask": attention_mask,
        "token_type_ids": token_type_ids,
    }


def _export_float(model, path, scratch):
    import torch
    import transformers

    from keras_bert_impl.convert import to_huggingface

    hf_directory = to_huggingface(model, os.path.join(scratch, "huggingface"))
    torch_model = transformers.BertForSequenceClassification.from_pretrained(
        hf_directory, dtype=torch.float32
    ).eval()
    inputs = _example_inputs(model.config)
    axes = {0: "batch", 1: "sequence"}
    with torch.no_grad(), warnings.catch_warnings():
        # The legacy-exporter notice, and tracer notes on shape checks in
        # transformers' mask code that are constant for BERT (the outputs are
        # compared with Keras' at other shapes in the tests).
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message="Exporting aten::index operator")
        torch.onnx.export(
            torch_model,
            (),
            path,
            kwargs=inputs,
            input_names=list(inputs),
            output_names=[OUTPUT],
            dynamic_axes={**{name: axes for name in inputs}, OUTPUT: {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )


def _quantize(float_path, path, scratch, reduce_range):
    from onnxruntime.quantization import QuantType, quant_pre_process, quantize_dynamic

    # ORT's recommended pre-processing (shape inference, graph optimization); its
    # symbolic shape inference needs auto_merge for BERT's dynamic batch x sequence.
    prepared = os.path.join(scratch, "prepared.onnx")
    # Both log a line per tensor at INFO on the root logger (which absl tools show).
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.WARNING))
    try:
        quant_pre_process(float_path, prepared, auto_merge=True)
        quantize_dynamic(
            prepared, path, weight_type=QuantType.QInt8, reduce_range=reduce_range
        )
    finally:
        root.setLevel(level)


def reduces_range(features=None):
    """Whether `export_classifier` quantizes to 7-bit weights for the CPU of
    `features` (default: this one): where it has no VNNI, or is unknown."""
    from keras_bert_impl.compression import cpu_features

    features = cpu_features.detect() if features is None else features
    return not features.int8_dot_product


def export_classifier(model, directory, *, quantize=False, reduce_range=None):
    """Exports a fine-tuned classifier to ONNX, optionally dynamically int8-quantized.

    Args:
        model: a float32 `keras_bert_impl.BertClassifier`.
        directory: created if needed; gets `model.onnx` (float32) and, with
            `quantize`, `model_quantized.onnx`. Each file appears complete or not at
            all (written under a temporary name, then renamed).
        quantize: also write ONNX Runtime's dynamic int8 quantization of the model.
        reduce_range: ORT's `reduce_range` (7-bit weights, exact on CPUs without
            VNNI); None: `reduces_range()`, for the CPU that runs this.

    Returns:
        The path of `model_quantized.onnx` with `quantize`, else of `model.onnx`.
        Inputs `input_ids`, `attention_mask`, `token_type_ids` (int64, [batch,
        sequence], both dynamic), output `logits` (float32, [batch, num_classes]).

    Raises:
        ValueError: `model` is not a float32 `BertClassifier` (a token classifier,
            or one already made int8 / bfloat16 with `with_precision`).
    """
    _check_float_classifier(model)
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    float_path = os.path.join(directory, FLOAT_FILE)
    quantized_path = os.path.join(directory, QUANTIZED_FILE)
    scratch = tempfile.mkdtemp(prefix=".onnx-export-", dir=directory)
    try:
        scratch_float = os.path.join(scratch, FLOAT_FILE)
        _export_float(model, scratch_float, scratch)
        if quantize:
            scratch_quantized = os.path.join(scratch, QUANTIZED_FILE)
            if reduce_range is None:
                reduce_range = reduces_range()
            _quantize(scratch_float, scratch_quantized, scratch, reduce_range)
        os.replace(scratch_float, float_path)
        if quantize:
            os.replace(scratch_quantized, quantized_path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return quantized_path if quantize else float_path


class OnnxRuntimeClassifier:
    """An exported classifier in an `onnxruntime.InferenceSession` on the CPU.

    Args:
        path: a `.onnx` file written by `export_classifier`.
        num_threads: intra-op threads (ORT's `intra_op_num_threads`); None keeps
            ORT's default (one per physical core). Give TensorFlow's count to
            compare the two on equal terms.
        allow_spinning: ORT's default (True) keeps idle intra-op threads spinning
            for the next piece of work, which is fastest on cores of its own; on
            cores shared with other busy processes, False avoids fighting them.

    Raises:
        FileNotFoundError: no file at `path`.
        ValueError: `path` is not a loadable ONNX model, or lacks the inputs and
            output `export_classifier` writes.
    """

    def __init__(self, path, num_threads=None, allow_spinning=True):
        import onnxruntime

        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise FileNotFoundError(f"{self.path}: no such ONNX model file")
        options = onnxruntime.SessionOptions()
        if num_threads is not None:
            options.intra_op_num_threads = int(num_threads)
        options.add_session_config_entry(
            "session.intra_op.allow_spinning", "1" if allow_spinning else "0"
        )
        try:
            self.session = onnxruntime.InferenceSession(
                self.path, options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # ORT raises its own pybind classes
            raise ValueError(
                f"{self.path}: not a loadable ONNX model ({type(error).__name__}: "
                f"{str(error).strip()[:300]})"
            ) from None
        inputs = {i.name for i in self.session.get_inputs()}
        outputs = [o.name for o in self.session.get_outputs()]
        if inputs != set(INPUTS) or OUTPUT not in outputs:
            raise ValueError(
                f"{self.path}: inputs {sorted(inputs)} and outputs {outputs}; expected "
                f"inputs {sorted(INPUTS)} and output {OUTPUT!r} (a model written by "
                "export_classifier)"
            )

    def predict(self, token_dict):
        """Logits of a token batch.

        Args:
            token_dict: `token_ids`, `segment_ids`, `padding_mask`: integer (or
                boolean mask) arrays `[batch, sequence]`, as our models take.

        Returns:
            float32 numpy logits `[batch, num_classes]`.
        """
        missing = [key for key in INPUTS.values() if key not in token_dict]
        if missing:
            raise ValueError(
                f"token_dict lacks {missing}; expected keys {list(INPUTS.values())}"
            )
        feed = {}
        for name, key in INPUTS.items():
            array = np.asarray(token_dict[key])
            if not (np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_):
                raise ValueError(
                    f"token_dict[{key!r}] has dtype {array.dtype}; expected integers"
                )
            if array.ndim != 2:
                raise ValueError(
                    f"token_dict[{key!r}] has shape {array.shape}; expected "
                    "[batch, sequence]"
                )
            feed[name] = array.astype(np.int64)
        shapes = {array.shape for array in feed.values()}
        if len(shapes) != 1:
            raise ValueError(
                f"token_dict arrays differ in shape: "
                f"{ {key: feed[name].shape for name, key in INPUTS.items()} }"
            )
        (logits,) = self.session.run([OUTPUT], feed)
        return np.asarray(logits, dtype=np.float32)

    __call__ = predict
