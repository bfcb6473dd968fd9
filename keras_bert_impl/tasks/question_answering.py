"""Extractive question answering (SQuAD v1.1 / v2.0): `QuestionAnsweringTask`."""

import json
import os

from keras_bert_impl.tasks.base import FinetuningTask, refuse_unread_flags


class QuestionAnsweringTask(FinetuningTask):
    """Answer spans in a context, trained on SQuAD JSON (`--train_file`,
    `--predict_file`), contexts cut into windows as run_squad.py does. Scored
    by exact match and F1; predictions go to `predictions.json` and
    `nbest_predictions.json`."""

    task_names = ("squad", "squad_v2")
    export_names = ("question_answerer",)
    model_class_name = "BertQuestionAnswerer"

    @classmethod
    def input_flags(cls, task_name):
        return ("train_file", "predict_file")

    @classmethod
    def check_inputs(cls, settings):
        refuse_unread_flags(settings, cls.input_flags(settings.task_name))
        if settings.do_train and not settings.train_file:
            raise ValueError("--do_train for SQuAD needs --train_file.")
        if (settings.do_eval or settings.do_predict) and not settings.predict_file:
            raise ValueError("--do_eval/--do_predict for SQuAD needs --predict_file.")

    @property
    def needs_labels(self):
        return False

    def read(self, split):
        from keras_bert_impl.data import tasks

        s = self.settings
        return tasks.read_squad(s.train_file if split == "train" else s.predict_file)

    def features(self, examples):
        from keras_bert_impl.data import tasks

        s = self.settings
        return tasks.squad_features(
            examples,
            self.tokenizer,
            max_seq_length=s.max_seq_length,
            doc_stride=s.doc_stride,
            max_query_length=s.max_query_length,
        )

    def dataset(self, features, batch_size, training):
        # Only training reads the answer positions: evaluation and prediction
        # score the model's outputs against the examples' own answers.
        return features.dataset(
            batch_size, with_labels=training, **self.batching(training)
        )

    def build_model(self, dtype):
        from keras_bert_impl import models, preprocessing

        s = self.settings
        preprocessor = preprocessing.BertQuestionAnswererPreprocessor(
            tokenizer=self.tokenizer,
            sequence_length=s.max_seq_length,
            doc_stride=s.doc_stride,
            max_query_length=s.max_query_length,
        )
        return self.model_with_head(models.BertQuestionAnswerer, dtype, preprocessor)

    def answers(self, outputs, features):
        from keras_bert_impl.data import tasks

        s = self.settings
        return tasks.squad_predictions(
            features,
            outputs["start_logits"],
            outputs["end_logits"],
            n_best_size=s.n_best_size,
            max_answer_length=s.max_answer_length,
            version_2_with_negative=s.task_name == "squad_v2",
            null_score_diff_threshold=s.null_score_diff_threshold,
        )

    def evaluate(self, outputs, examples, features):
        from keras_bert_impl.data import tasks

        answers = self.answers(outputs, features).answers
        return tasks.squad_metrics(features.examples, answers)

    def write_predictions(self, outputs, examples, features, output_dir):
        from keras_bert_impl.training.history import write_atomically

        predictions = self.answers(outputs, features)
        path = os.path.join(output_dir, "predictions.json")
        write_atomically(path, json.dumps(predictions.answers, indent=1) + "\n")
        write_atomically(
            os.path.join(output_dir, "nbest_predictions.json"),
            json.dumps(predictions.nbest, indent=1) + "\n",
        )
        return path

    @classmethod
    def model_from_directory(cls, export_name, init_checkpoint, labels, **kwargs):
        from keras_bert_impl.models import BertQuestionAnswerer

        return BertQuestionAnswerer.from_preset(init_checkpoint, **kwargs)

    @classmethod
    def export(cls, model, export_dir, export_name, options, **common):
        from keras_bert_impl.export import exporter

        return exporter.export_question_answerer(
            model,
            export_dir,
            doc_stride=options.doc_stride,
            max_query_length=options.max_query_length,
            max_answer_length=options.max_answer_length,
            n_best_size=options.n_best_size,
            **common,
        )
