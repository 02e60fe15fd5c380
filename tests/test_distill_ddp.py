"""DDP on CPU: two gloo processes started like torchrun (env vars) average gradients to the union batch's,
their sampler shards are disjoint and cover the data, and a whole teacher run works with only rank 0 writing."""

import json
import os
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from augrgb.distill import distributed
from augrgb.distill.data import ShardedBatchSampler, SnippetDataset, VideoItem
from augrgb.distill.losses import DistillationObjective, ObjectiveConfig
from augrgb.distill.trainer import TrainModule
from augrgb.models.stream import Stream

WORLD = 2
K = 3


def _items():
    rng = np.random.default_rng(0)
    return [VideoItem(f"v{i}", {"rgb": rng.normal(size=(10, 6)).astype(np.float16),
                                "pose": rng.normal(size=(10, 4)).astype(np.float16)},
                      rng.random((10, K)) > 0.6, 10) for i in range(4)]


def _models():
    torch.manual_seed(0)
    student = Stream(6, K, hidden=8, dropout=0.0, filter_options={"layers": 2})
    teacher = Stream(4, K, hidden=8, dropout=0.0, filter_options={"layers": 2}).eval()
    objective = DistillationObjective(ObjectiveConfig(terms={"global": {}, "boundary": {}, "hint": {}}),
                                      head="sigmoid", num_classes=K, student_dim=8, teacher_dims=[8])
    return TrainModule(student, objective), teacher


def _gradients(module, teacher, batch):
    batch = batch.to("cpu")
    with torch.no_grad():
        t_out = teacher(batch.features["pose"], batch.mask)
    total, _, _ = module(batch.features["rgb"], batch.mask, batch.labels, [t_out])
    total.backward()


def _worker(rank, port, workdir, run_config):
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    ctx = distributed.setup("cpu")
    assert ctx.distributed and ctx.rank == rank and torch.distributed.get_backend() == "gloo"
    items = _items()
    dataset = SnippetDataset(items, ["rgb", "pose"], "sigmoid", K)
    sampler = ShardedBatchSampler(len(items), 2, ctx.world_size, ctx.rank, seed=0)
    indices = next(iter(sampler))
    module, teacher = _models()
    ddp = distributed.wrap(module, ctx)
    _gradients(ddp, teacher, dataset.collate([dataset[i] for i in indices]))
    grads = {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}
    torch.save({"batch": indices, "shard": sampler.shard().tolist(), "grads": grads}, f"{workdir}/rank{rank}.pt")

    from augrgb.distill.settings import TeacherConfig
    from augrgb.distill.train import train_teacher

    train_teacher(TeacherConfig(**run_config))          # tears the process group down when done


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn(workdir, run_config, attempts=3):
    """Start the two ranks on a free port; another process may take that port between our probe and rank 0's
    bind (a race no probe closes), so an "address in use" start is retried on a fresh port."""
    for attempt in range(attempts):
        try:
            mp.spawn(_worker, args=(_free_port(), str(workdir), run_config), nprocs=WORLD, join=True)
            return
        except Exception as exc:  # mp.ProcessRaisedException carries the rank's traceback as text
            if "address already in use" not in str(exc).lower() or attempt == attempts - 1:
                raise


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_two_gloo_processes_average_to_the_union_batch_gradient(tmp_path):
    from synthetic_features import dataset_config, make_store

    store, annotations = make_store(tmp_path / "data", videos=10, length=(12, 20))
    run_config = {"dataset": dataset_config(), "features": str(store), "annotations": [str(annotations)],
                  "modality": "pose", "stream": {"hidden": 8, "filter_options": {"layers": 2}},
                  "training": {"epochs": 2, "batch_size": 2, "validation_fraction": 0.2}, "device": "cpu",
                  "out": str(tmp_path / "run")}
    _spawn(tmp_path, run_config)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]

    shards = [set(r["shard"]) for r in ranks]
    assert not shards[0] & shards[1] and shards[0] | shards[1] == set(range(4))

    union = ranks[0]["batch"] + ranks[1]["batch"]
    assert sorted(union) == [0, 1, 2, 3]
    items = _items()
    dataset = SnippetDataset(items, ["rgb", "pose"], "sigmoid", K)
    module, teacher = _models()
    _gradients(module, teacher, dataset.collate([dataset[i] for i in union]))
    single = {n: p.grad for n, p in module.named_parameters() if p.grad is not None}
    assert set(single) == set(ranks[0]["grads"]) and len(single) > 10
    for rank in ranks:
        for name, grad in single.items():
            torch.testing.assert_close(rank["grads"][name], grad, rtol=1e-5, atol=1e-5, msg=name)

    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["world_size"] == 2 and record["status"] == "finished" and len(record["epochs"]) == 2
    assert (tmp_path / "run" / "best.pt").is_file() and (tmp_path / "run" / "last.pt").is_file()
    leftovers = [p.name for p in (tmp_path / "run").iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []
