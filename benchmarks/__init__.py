"""Measurements behind BENCHMARKS.md, run from a checkout (not installed):
`python -m benchmarks.<name> --help`. Each writes its section of a benchmarks
file only when given `--benchmarks_file`; otherwise it prints the section."""
