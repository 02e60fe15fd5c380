"""``augrgb plot ...``: figures of a run (t-SNE, relation matrices, boundary saliency, timelines,
hyper-parameter curves), one module per figure; each figure is a function returning the PNG path."""
