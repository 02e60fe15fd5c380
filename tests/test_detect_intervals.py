"""Interval decoders, NMS and per-frame probabilities on hand-made probability sequences."""

import numpy as np
import pytest

from augrgb.core.errors import InputError
from augrgb.core.grid import SnippetGrid
from augrgb.detect.intervals import DECODERS, runs
from augrgb.detect.nms import class_nms, nms
from augrgb.detect.probabilities import frame_probabilities
from augrgb.detect.settings import DetectConfig, build_decoder


def approx(intervals):
    return [(i.label, pytest.approx(i.start), pytest.approx(i.end), pytest.approx(i.score)) for i in intervals]


def test_runs_are_maximal_and_inclusive():
    assert runs(np.array([0, 1, 1, 0, 1, 0, 0, 1], bool)) == [(1, 2), (4, 4), (7, 7)]
    assert runs(np.ones(3, bool)) == [(0, 2)]
    assert runs(np.zeros(4, bool)) == []


def test_grid_span_clips_the_padded_tail():
    grid = SnippetGrid(fps=25, snippet=16, stride=16, frames=100)  # 7 snippets, the last one padded
    assert grid.span(0, 0) == (0.0, 16 / 25)
    assert grid.span(5, 6) == (80 / 25, 100 / 25)
    overlap = SnippetGrid(fps=25, snippet=16, stride=8, frames=1000)
    assert overlap.span(2, 3) == (16 / 25, (24 + 16) / 25)
    with pytest.raises(InputError):
        SnippetGrid(fps=25, snippet=8, stride=16, frames=10)


def sparse_case():
    # classes c0, c1 and background; rows are snippets
    probs = np.array([[.1, .1], [.6, .3], [.25, .45], [.1, .1], [.45, .1], [.1, .1], [.05, .9]])
    background = np.array([.8, .1, .3, .8, .45, .8, .05])
    return probs, background, SnippetGrid(25, 16, 16, 100)


def test_sparse_runs_of_non_background_take_the_class_of_the_run_average():
    probs, background, grid = sparse_case()
    out = DECODERS.build("sparse")(probs, grid, background)
    # run 1-2: means c0 .425, c1 .375 -> c0 although snippet 2's argmax is c1; run 4: a class/background tie
    # counts as the class (argmax takes the first index, background is last); run 6 ends at frame 100.
    assert approx(out) == [(0, 16 / 25, 48 / 25, .425), (0, 64 / 25, 80 / 25, .45), (1, 96 / 25, 100 / 25, .9)]


def test_sparse_minimum_length_and_background_required():
    probs, background, grid = sparse_case()
    assert approx(DECODERS.build("sparse", min_length=0.7)(probs, grid, background)) == [(0, 16 / 25, 48 / 25, .425)]
    with pytest.raises(InputError, match="background"):
        DECODERS.build("sparse")(probs, grid, None)


def dense_case():
    p0 = [.1, .6, .7, .2, .55, .9, .1, .1, .8, .1]
    p1 = [.3, .3, 0, 0, 0, 0, 0, 0, 0, 0]
    return np.array([p0, p1]).T, SnippetGrid(fps=10, snippet=2, stride=2, frames=20)  # a snippet is 0.2 s


def test_dense_per_class_thresholds():
    probs, grid = dense_case()
    out = DECODERS.build("dense", thresholds=[0.5, 0.3])(probs, grid)
    assert approx(out) == [(1, 0.0, 0.4, .3), (0, 0.2, 0.6, .65), (0, 0.8, 1.2, .725), (0, 1.6, 1.8, .8)]
    # one threshold for all classes: class 1 never reaches 0.5
    assert [i.label for i in DECODERS.build("dense", thresholds=0.5)(probs, grid)] == [0, 0, 0]


def test_dense_gap_closing_then_minimum_length():
    probs, grid = dense_case()
    out = DECODERS.build("dense", thresholds=[0.5, 0.3], close_gap=0.2, min_length=0.3)(probs, grid)
    # 0.6 -> 0.8 is a 0.2 s gap: joined, score over all five snippets; the 0.2 s run at 1.6 s is dropped
    assert approx(out) == [(1, 0.0, 0.4, .3), (0, 0.2, 1.2, (.6 + .7 + .2 + .55 + .9) / 5)]
    shorter_gap = DECODERS.build("dense", thresholds=[0.5, 0.3], close_gap=0.19)(probs, grid)
    assert len([i for i in shorter_gap if i.label == 0]) == 3


def test_dense_refuses_bad_options():
    probs, grid = dense_case()
    with pytest.raises(InputError, match="3 given for 2 classes"):
        DECODERS.build("dense", thresholds=[.5, .5, .5])(probs, grid)
    with pytest.raises(InputError):
        DECODERS.build("dense", thresholds=1.5)
    with pytest.raises(InputError):
        DECODERS.build("dense", min_length=-1)


def test_multi_threshold_unions_levels_and_suppresses_overlaps():
    probs = np.array([[.2, .6, .9, .6, .2]]).T
    grid = SnippetGrid(1, 1, 1, 5)
    both = DECODERS.build("multi-threshold", levels=[.5, .8], nms_iou=0.5)(probs, grid)
    assert approx(both) == [(0, 1, 4, .7), (0, 2, 3, .9)]  # tIoU 1/3 <= 0.5: both kept
    strict = DECODERS.build("multi-threshold", levels=[.5, .8], nms_iou=0.3)(probs, grid)
    assert approx(strict) == [(0, 2, 3, .9)]


def test_nms_greedy_and_class_wise():
    segments = np.array([[0, 10], [1, 11], [20, 30], [0, 10]], float)
    scores = np.array([.9, .8, .7, .95])
    labels = np.array([0, 0, 0, 1])
    assert class_nms(segments, scores, labels, 0.5).tolist() == [3, 0, 2]  # [1, 11] overlaps [0, 10] by 9/11
    assert nms(segments, scores, 0.5).tolist() == [3, 2]
    assert nms(segments, scores, 0.85).tolist() == [3, 1, 2]  # 9/11 < 0.85 keeps [1, 11]; [0, 10] repeats [0, 10]
    assert nms(np.array([[0, 1], [5, 6]]), np.array([.5, .5]), 0.1).tolist() == [0, 1]  # ties keep input order
    assert class_nms(np.zeros((0, 2)), np.zeros(0), np.zeros(0, int), 0.5).tolist() == []


def test_frame_probabilities_follow_the_covering_snippet():
    snippets = np.arange(3, dtype=np.float32)[:, None]
    frames = frame_probabilities(snippets, SnippetGrid(25, 16, 16, 40))[:, 0]
    assert frames.tolist() == [0] * 16 + [1] * 16 + [2] * 8
    overlapping = frame_probabilities(np.arange(5, dtype=np.float32)[:, None], SnippetGrid(25, 16, 8, 48))[:, 0]
    assert overlapping[:12].tolist() == [0] * 12 and overlapping[12] == 1  # centres at 7.5, 15.5, ...: nearest wins


def test_config_resolves_decoder_and_thresholds():
    config = DetectConfig()
    assert config.decoding("softmax", 3, None) == {"name": "sparse", "options": {}}
    assert config.decoding("sigmoid", 2, None)["options"] == {"thresholds": [0.5, 0.5]}
    assert config.decoding("sigmoid", 2, [0.2, 0.7])["options"] == {"thresholds": [0.2, 0.7]}
    assert DetectConfig(threshold=0.4).decoding("sigmoid", 2, [0.2, 0.7])["options"] == {"thresholds": [0.4, 0.4]}
    multi = DetectConfig(decoder="multi-threshold", levels=[.3, .6], nms_iou=.4).decoding("sigmoid", 2, None)
    assert isinstance(build_decoder(multi), DECODERS.get("multi-threshold"))
    with pytest.raises(InputError, match="--levels.*dense"):
        DetectConfig(levels=[.5]).decoding("sigmoid", 2, None)
    with pytest.raises(InputError, match="--close-gap.*sparse"):
        DetectConfig(close_gap=1).decoding("softmax", 2, None)
    with pytest.raises(InputError, match="softmax"):
        DetectConfig(decoder="sparse").decoding("sigmoid", 2, None)
    with pytest.raises(InputError, match="unknown interval decoder"):
        DetectConfig(decoder="greedy").decoding("sigmoid", 2, None)

