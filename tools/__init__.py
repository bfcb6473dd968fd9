"""Command-line tools of keras_bert_impl (installed as `keras_bert_impl_tools`)."""
