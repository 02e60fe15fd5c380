"""The built-in benchmark: procedurally generated untrimmed videos of skeleton actors, with skeletons and dense labels.

``generate(out_dir, videos, seconds, mode, size, seed)`` writes a benchmark folder; ``build_video`` gives one
video in memory; ``label_statistics`` describes an annotation file. See docs/benchmark.md.
"""
