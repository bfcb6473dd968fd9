"""Masked-language-model filling (a pretrained model's MLM head): `FillMaskTask`.

Pretraining itself is `kbi-pretrain` (`training.pretraining`)."""

from keras_bert_impl.tasks.base import Task


class FillMaskTask(Task):
    """Text with "[MASK]"s -> the top-k tokens and scores at each mask."""

    export_names = ("fill_mask",)

    @classmethod
    def model_from_directory(cls, export_name, init_checkpoint, labels, **kwargs):
        from keras_bert_impl.models import BertPretrainer

        return BertPretrainer.from_preset(init_checkpoint, **kwargs)

    @classmethod
    def export(cls, model, export_dir, export_name, options, **common):
        from keras_bert_impl.export import exporter

        return exporter.export_fill_mask(
            model, export_dir, top_k=options.top_k, **common
        )
