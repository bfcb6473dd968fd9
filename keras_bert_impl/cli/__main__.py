"""`python -m keras_bert_impl.cli <command> [flags]` (see `launch.main`)."""

import sys

from keras_bert_impl.cli.launch import main

sys.exit(main())
