"""PredictionService.MultiInference: several classify/regress tasks on one tf.Example input.

TF Serving's semantics (servables/tensorflow/multi_inference.cc): every task names the
same model; no signature twice; each task's method is classify or regress and its
signature must suit it; all signatures read the same input tensor; the tasks are checked
before any runs, and the response has one result per task, in order.
"""

from tensorflow_serving.apis import inference_pb2, model_pb2

from keras_bert_impl.serving import requests, status

DEFAULT_SIGNATURE = "serving_default"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"


def _checked_tasks(servable, request):
    """[(signature name, method)] after TF Serving's checks, in task order."""
    model_name, input_tensor, seen, tasks = "", "", set(), []
    for task in request.tasks:
        if not task.model_spec.name:
            raise status.invalid_argument("Found ModelSpec with an empty model name.")
        if not model_name:
            model_name = task.model_spec.name
        elif task.model_spec.name != model_name:
            raise status.invalid_argument(
                "All ModelSpecs in a MultiInferenceRequest must access the same model name."
            )
        name = task.model_spec.signature_name or DEFAULT_SIGNATURE
        if name in seen:
            raise status.invalid_argument(f"Duplicate evaluation of signature: {name}")
        seen.add(name)
        signature = servable.signature_defs.get(name)
        if signature is None:
            raise status.invalid_argument(
                f"Requested signature not found in model graph: {name}"
            )
        if task.method_name not in (CLASSIFY_METHOD, REGRESS_METHOD):
            raise status.unimplemented(
                f"Unsupported signature method_name: {task.method_name}"
            )
        # The Classify/Regress checks of the signature itself, before anything runs.
        kind = "classification" if task.method_name == CLASSIFY_METHOD else "regression"
        servable.check_example_signature(name, task.method_name, kind)
        tensor = signature.inputs["inputs"].name
        if not input_tensor:
            input_tensor = tensor
        elif tensor != input_tensor:
            raise status.invalid_argument(
                "Input tensor must be the same for all Signatures."
            )
        tasks.append((name, task.method_name))
    return tasks


def multi_inference(manager, request):
    """MultiInferenceRequest -> MultiInferenceResponse (the model of the first task)."""
    spec = request.tasks[0].model_spec if request.tasks else model_pb2.ModelSpec()
    servable = manager.servable(spec)
    tasks = _checked_tasks(servable, request)
    examples = requests.serialized_examples(request.input)
    response = inference_pb2.MultiInferenceResponse()
    for name, method in tasks:
        result = response.results.add()
        result.model_spec.name = servable.name
        result.model_spec.version.value = servable.version
        result.model_spec.signature_name = name
        if method == CLASSIFY_METHOD:
            _, classes, scores = servable.classify(name, examples)
            requests.fill_classifications(result.classification_result, classes, scores)
        else:
            _, values = servable.regress(name, examples)
            for value in values:
                result.regression_result.regressions.add().value = float(value)
    return response
