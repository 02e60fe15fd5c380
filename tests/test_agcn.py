"""2s-AGCN: skeleton graph, model shapes, snippet grid and normalisation, training and checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pose_fixtures import STANDING, motion

from augrgb.core.errors import InputError
from augrgb.core.grid import snippet_frame_indices
from augrgb.extract.agcn import AGCN, AdaptiveGraphConv, TwoStreamAGCN, bone_input
from augrgb.extract.graph import spatial_partition
from augrgb.extract.pose_encoder_training import (
    classification_targets,
    load_pose_encoder,
    save_pose_encoder,
    train_pose_encoder,
)
from augrgb.extract.pose_snippets import cut_snippets, encode_snippets, normalize_snippets
from augrgb.extract.skeleton_layout import BONES, JOINT_NAMES, ROOT_JOINT, parents

TINY = (8, 8, 16, 16)  # widths for fast tests; the stride-2 rule still applies at the 16-wide unit


@pytest.fixture(autouse=True)
def one_torch_thread():
    """These models are tiny: intra-op threads only add synchronisation (and stall on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_ntu_bone_tree_has_24_bones_reaching_the_spine_shoulder():
    assert len(BONES) == 24 and len({child for child, _ in BONES}) == 24
    parent = parents()
    for joint in range(25):
        for _ in range(25):
            joint = parent[joint]
        assert joint == ROOT_JOINT


def test_spatial_partition_is_identity_inward_outward_normalised():
    A = spatial_partition()
    assert A.shape == (3, 25, 25) and A.dtype == np.float32
    np.testing.assert_array_equal(A[0], np.eye(25))
    inward, outward = A[1] > 0, A[2] > 0
    np.testing.assert_array_equal(inward, outward.T)
    np.testing.assert_array_equal(inward | outward, (inward | outward).T)  # the undirected skeleton is symmetric
    assert inward.sum() == outward.sum() == 24
    for subset in A[1:]:
        sums = subset.sum(axis=0)
        np.testing.assert_allclose(sums[sums > 0], 1.0, rtol=1e-6)
    # Spine shoulder receives from its 4 children (spine mid, neck, both shoulders), a quarter each.
    children = [JOINT_NAMES.index(n) for n in ("spine_mid", "neck", "left_shoulder", "right_shoulder")]
    np.testing.assert_allclose(A[1][:, ROOT_JOINT][children], 0.25)
    assert A[1][:, ROOT_JOINT].sum() == pytest.approx(1.0)
    # Outward: every joint but the root receives from exactly its parent, with weight 1.
    parent = parents()
    for joint in range(25):
        if joint != ROOT_JOINT:
            assert A[2][parent[joint], joint] == 1.0 and (A[2][:, joint] > 0).sum() == 1


def test_adaptive_graph_conv_aggregates_along_A_plus_B_plus_C():
    """With theta/phi zero (C uniform 1/V), W identity and BN neutral the output is relu(x (sum_k A_k + B_k + 1/V) + x)."""
    torch.manual_seed(0)
    A = torch.from_numpy(spatial_partition())
    gcn = AdaptiveGraphConv(4, 4, A).eval()
    with torch.no_grad():
        for k in range(3):
            gcn.theta[k].weight.zero_(), gcn.theta[k].bias.zero_(), gcn.phi[k].weight.zero_(), gcn.phi[k].bias.zero_()
            gcn.W[k].weight.copy_(torch.eye(4)[:, :, None, None]), gcn.W[k].bias.zero_()
        gcn.B.copy_(torch.randn_like(gcn.B) * 0.1)
    x = torch.randn(2, 4, 5, 25)
    graph = (A + gcn.B.detach() + 1 / 25).sum(0).numpy()
    expected = np.maximum(np.einsum("nctv,vw->nctw", x.numpy(), graph) / np.sqrt(1 + 1e-5) + x.numpy(), 0)
    np.testing.assert_allclose(gcn(x).detach().numpy(), expected, rtol=1e-4, atol=1e-5)
    C = gcn.data_graph(torch.randn(2, 4, 5, 25), 0)
    np.testing.assert_allclose(C.sum(dim=1).detach().numpy(), 1.0, rtol=1e-5)  # softmax over source joints


@pytest.mark.parametrize("num_person", [1, 2])
def test_agcn_shapes_with_the_paper_widths(num_person):
    model = AGCN(num_classes=7).eval()
    x = torch.randn(3, 3, 16, 25, num_person)
    seen = []
    model.units[-1].register_forward_hook(lambda module, inp, out: seen.append(out.shape))
    with torch.no_grad():
        assert model(x).shape == (3, 7)
        assert model.extract_features(x).shape == (3, 256)
    assert seen[0] == (3 * 2, 256, 4, 25)  # bodies padded to 2, time strided 16 -> 8 -> 4


def test_one_body_equals_two_with_an_absent_second():
    model = AGCN(num_classes=None, widths=TINY).eval()
    x = torch.randn(2, 3, 16, 25, 1)
    with torch.no_grad():
        padded = torch.cat([x, torch.zeros_like(x)], dim=-1)
        torch.testing.assert_close(model.extract_features(x), model.extract_features(padded))
    with pytest.raises(ValueError, match="3 bodies"):
        model.extract_features(torch.randn(1, 3, 16, 25, 3))


def test_bone_input_is_joint_minus_parent():
    joints = torch.from_numpy(STANDING.T.copy())[None, :, None, :, None]  # (1, 3, 1, 25, 1)
    bones = bone_input(joints)[0, :, 0, :, 0].T.numpy()
    elbow, shoulder = JOINT_NAMES.index("left_elbow"), JOINT_NAMES.index("left_shoulder")
    np.testing.assert_allclose(bones[elbow], STANDING[elbow] - STANDING[shoulder])
    assert not bones[ROOT_JOINT].any() and (np.abs(bones).sum(axis=1) > 0).sum() == 24


def test_two_stream_feature_is_the_mean_of_the_streams():
    model = TwoStreamAGCN(num_classes=4, widths=TINY).eval()
    x = torch.randn(2, 3, 16, 25, 2)
    with torch.no_grad():
        expected = (model.joint.extract_features(x) + model.bone.extract_features(bone_input(x))) / 2
        torch.testing.assert_close(model.extract_features(x), expected)
        assert model(x).shape == (2, 4) and expected.shape == (2, 16)


@pytest.mark.parametrize("frames, snippet, stride, count", [
    (1, 16, 16, 1), (16, 16, 16, 1), (17, 16, 16, 2), (32, 16, 16, 2), (33, 16, 16, 3), (40, 16, 8, 4), (5, 16, 8, 1),
])
def test_snippet_grid_count(frames, snippet, stride, count):
    assert snippet_frame_indices(frames, snippet, stride).shape == (count, snippet)


def test_snippet_grid_pads_the_tail_with_the_last_frame():
    indices = snippet_frame_indices(20, 16, 16)
    np.testing.assert_array_equal(indices[0], np.arange(16))
    np.testing.assert_array_equal(indices[1], [16, 17, 18, 19] + [19] * 12)
    snippets = cut_snippets(np.arange(20, dtype=np.float32)[:, None, None, None] * np.ones((20, 2, 25, 3), np.float32))
    assert snippets.shape == (2, 16, 2, 25, 3)
    np.testing.assert_array_equal(snippets[1, :, 0, 0, 0], indices[1])
    with pytest.raises(ValueError, match="at least one frame"):
        snippet_frame_indices(0)


def test_encode_snippets_follows_the_grid_and_pads_with_the_last_frame():
    rng = np.random.default_rng(0)
    joints = motion(0, 20, rng)[:, None]  # (20, 1, 25, 3)
    model = AGCN(num_classes=None, widths=TINY).eval()
    features = encode_snippets(model, joints, snippet=16, stride=16, batch_size=1)
    assert features.shape == (2, 16) and features.dtype == np.float32
    tail = np.concatenate([joints[16:], np.repeat(joints[19:], 12, axis=0)])
    np.testing.assert_allclose(encode_snippets(model, tail), features[1:], rtol=1e-4, atol=1e-5)
    longer = encode_snippets(model, np.concatenate([joints, joints]), batch_size=3)  # 40 frames -> 3 snippets
    np.testing.assert_allclose(longer[0], features[0], rtol=1e-4, atol=1e-5)


def test_normalisation_centres_and_turns_the_body_to_face_the_camera():
    rng = np.random.default_rng(1)
    clip = motion(2, 16, rng)[:, None]  # (16, 1, 25, 3)
    angle = np.deg2rad(70)
    rot = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]], np.float32)
    turned = clip @ rot.T + np.array([2.0, 0.3, 1.0], np.float32)
    two = np.concatenate([clip, np.zeros_like(clip)], axis=1)  # an absent second body stays zero
    out = normalize_snippets(np.stack([two, np.concatenate([turned, np.zeros_like(turned)], axis=1)]))
    np.testing.assert_allclose(out[0], out[1], atol=1e-4)
    np.testing.assert_allclose(out[0, 0, 0, JOINT_NAMES.index("spine_mid")], 0.0, atol=1e-6)
    assert not out[:, :, 1].any()
    left, right = out[0, 0, 0, JOINT_NAMES.index("left_shoulder")], out[0, 0, 0, JOINT_NAMES.index("right_shoulder")]
    assert right[0] - left[0] > 0.3 and abs(right[2] - left[2]) < 0.05  # shoulders across +x, facing the camera


def test_softmax_targets_add_a_background_class():
    targets = classification_targets(np.array([[0, 0, 0], [0, 1, 0], [1, 1, 0]]), "softmax").numpy()
    np.testing.assert_allclose(targets, [[0, 0, 0, 1], [0, 1, 0, 0], [0.5, 0.5, 0, 0]])


def synthetic_snippets(per_class: int, classes: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.array(classes), per_class)
    joints = np.stack([motion(int(c), 16, rng)[:, None] for c in labels])
    return joints, labels


@pytest.mark.slow
def test_training_separates_synthetic_motions_multilabel():
    joints, labels = synthetic_snippets(8, (0, 1, 2), seed=0)
    model, metrics = train_pose_encoder(joints, np.eye(3)[labels], "sigmoid", epochs=20, lr=0.2,
                                        batch_size=8, arch="agcn", widths=TINY, num_person=1)
    assert metrics["train"]["accuracy"] >= 0.9 and metrics["train"]["mAP"] >= 0.95
    assert metrics["history"][-1]["train_loss"] < metrics["history"][0]["train_loss"] / 2
    assert not model.training


@pytest.mark.slow
def test_training_softmax_with_a_background_class():
    joints, labels = synthetic_snippets(8, (0, 1), seed=1)
    still = np.repeat(STANDING[None, None, None], 8, axis=0).repeat(16, axis=1)  # (8, 16, 1, 25, 3)
    still = still + np.random.default_rng(2).normal(0, 0.01, still.shape).astype(np.float32)
    multi_hot = np.concatenate([np.eye(2)[labels], np.zeros((8, 2))])
    model, metrics = train_pose_encoder(np.concatenate([joints, still]), multi_hot, "softmax", epochs=20, lr=0.2,
                                        batch_size=8, arch="2s-agcn", widths=TINY, num_person=1)
    assert model.fc.out_features == 3  # two actions + background
    assert metrics["train"]["accuracy"] >= 0.9 and "val" not in metrics


def test_validation_split_keeps_the_best_epoch():
    joints, labels = synthetic_snippets(6, (0, 1, 2), seed=3)
    holdout = np.zeros(len(labels), bool)
    holdout[[0, 7, 12, 17]] = True
    _, metrics = train_pose_encoder(joints, np.eye(3)[labels], "sigmoid", epochs=4, lr=0.2, batch_size=6,
                                    arch="agcn", widths=TINY, num_person=1, holdout=holdout)
    assert metrics["num_val"] == 4 and metrics["num_train"] == 14
    val_losses = [record["val_loss"] for record in metrics["history"]]
    assert metrics["best_epoch"] == 1 + int(np.argmin(val_losses))
    assert metrics["val"]["loss"] == pytest.approx(min(val_losses), rel=1e-5)  # the returned model is that epoch's


def test_checkpoint_round_trip_loads_with_weights_only(tmp_path):
    model = TwoStreamAGCN(num_classes=5, num_person=2, widths=TINY).eval()
    meta = {"kind": "sigmoid", "class_names": ["a", "b", "c", "d", "e"], "snippet": 16, "stride": 16,
            "metrics": {"train": {"accuracy": 0.5}}}
    path = tmp_path / "pose.pt"
    save_pose_encoder(path, model, meta)
    raw = torch.load(path, weights_only=True)
    assert raw["arch"] == "2s-agcn" and raw["config"]["widths"] == list(TINY)
    loaded, loaded_meta = load_pose_encoder(path)
    assert loaded_meta == meta and isinstance(loaded, TwoStreamAGCN) and not loaded.training
    x = torch.randn(2, 3, 16, 25, 2)
    with torch.no_grad():
        torch.testing.assert_close(loaded.extract_features(x), model.extract_features(x))
    assert [p.name for p in tmp_path.iterdir()] == ["pose.pt"]  # no temporary file left behind


def test_checkpoint_loading_refuses_code_and_foreign_files(tmp_path):
    unsafe = tmp_path / "unsafe.pt"
    torch.save({"format": "augrgb-pose-encoder", "payload": InputError("x", "y")}, unsafe)
    with pytest.raises(InputError, match=r"unsafe\.pt: not a readable weights-only checkpoint"):
        load_pose_encoder(unsafe)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(InputError, match=r"foreign\.pt: not an augrgb pose-encoder checkpoint"):
        load_pose_encoder(foreign)
    mismatched = tmp_path / "mismatch.pt"
    save_pose_encoder(mismatched, AGCN(3, widths=TINY), {})
    checkpoint = torch.load(mismatched, weights_only=True)
    checkpoint["config"]["widths"] = [8, 8, 16, 32]
    torch.save(checkpoint, mismatched)
    with pytest.raises(InputError, match=r"mismatch\.pt: checkpoint does not match the agcn model"):
        load_pose_encoder(mismatched)
