"""chainrule.distributed in one process: the shards, the one-process fallback, synchronised batch
norm's math. The runs under a real mpiexec are in test_distributed_mpi.py."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import chainrule as cr
import chainrule.distributed as dist
from chainrule import nn, optim
from chainrule.data import DataLoader, TensorDataset
from chainrule.distributed import mpi
from chainrule.distributed.batchnorm import SyncBatchNormOp
from chainrule.train import evaluate, fit
from chainrule.train.comm import SingleProcess


def test_shard_bounds_split_like_array_split():
    for m in range(0, 30):
        for n in range(1, 6):
            bounds = [dist.shard_bounds(m, r, n) for r in range(n)]
            expected = [(a[0], a[-1] + 1) if len(a) else None for a in np.array_split(range(m), n)]
            assert [b if b[0] < b[1] else None for b in bounds] == expected


@pytest.mark.parametrize("world_size", [1, 2, 3, 4])
@pytest.mark.parametrize("shuffle", [False, True])
def test_the_shards_of_each_batch_are_the_one_process_batch(world_size, shuffle):
    x = np.arange(104, dtype=np.float32)[:, None]  # last batch 4: one each for 4
    loader = DataLoader(TensorDataset(x, x[:, 0]), batch_size=20, shuffle=shuffle, seed=7)
    shards = [dist.ShardedLoader(loader, r, world_size) for r in range(world_size)]
    assert all(len(s) == len(loader) == 6 for s in shards)
    for epoch in (0, 1):
        for start in (0, 4):  # resuming part-way through an epoch
            whole = [b[0].numpy()[:, 0] for b in loader.epoch(epoch, start)]
            parts = [[b[0].numpy()[:, 0] for b in s.epoch(epoch, start)] for s in shards]
            for step, batch in enumerate(whole):
                joined = np.concatenate([p[step] for p in parts])
                np.testing.assert_array_equal(joined, batch)
                sizes = [len(p[step]) for p in parts]
                assert max(sizes) - min(sizes) <= 1


def test_shards_of_a_custom_batch_sampler():
    data = TensorDataset(np.arange(10.0)[:, None])
    loader = DataLoader(data, batch_sampler=[[9, 1, 5], [0, 2, 3, 4]])
    parts = [list(dist.ShardedLoader(loader, r, 2).epoch(0)) for r in range(2)]
    assert [b[0].numpy()[:, 0].tolist() for b in parts[0]] == [[9.0, 1.0], [0.0, 2.0]]
    assert [b[0].numpy()[:, 0].tolist() for b in parts[1]] == [[5.0], [3.0, 4.0]]


def test_a_batch_too_small_to_share_is_refused():
    data = TensorDataset(np.zeros((41, 2)))
    with pytest.raises(ValueError, match="batch of 1 examples cannot be split over 2 processes"):
        dist.ShardedLoader(DataLoader(data, batch_size=10), 0, 2)
    dist.ShardedLoader(DataLoader(data, batch_size=10, drop_last=True), 0, 2)  # no last batch
    with pytest.raises(ValueError, match="batching turned off"):
        dist.ShardedLoader(DataLoader(data, batch_size=None), 0, 2)
    with pytest.raises(ValueError, match="rank 2 is not in 0..1"):
        dist.ShardedLoader(DataLoader(data, batch_size=10, drop_last=True), 2, 2)


def test_evaluation_shards_cover_the_data_once():
    x = np.arange(23.0)[:, None]
    for data in ((x, x[:, 0]), TensorDataset(x, x[:, 0]), DataLoader(TensorDataset(x, x[:, 0]))):
        seen = []
        for r in range(3):
            part = dist.shard_dataset(data, r, 3)
            loader = part if isinstance(part, DataLoader) else DataLoader(part, batch_size=5)
            if isinstance(part, tuple):
                loader = DataLoader(TensorDataset(*part), batch_size=5)
            seen += [v for b in loader for v in b[0].numpy()[:, 0].tolist()]
        assert seen == x[:, 0].tolist()


@pytest.fixture
def no_communicator(monkeypatch):
    """init() as in a fresh process (it remembers its communicator)."""
    monkeypatch.setattr(mpi, "_current", None)
    for name in mpi.WORLD_SIZE_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_without_a_launcher_one_process_and_no_mpi(no_communicator, monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # as if not installed: never imported
    comm = dist.init()
    assert isinstance(comm, SingleProcess) and not dist.started()
    assert (dist.rank(), dist.world_size(), dist.is_distributed()) == (0, 1, False)
    x = np.arange(3.0)
    assert dist.all_reduce(x) is x and dist.broadcast(x) is x
    assert x.tolist() == [0.0, 1.0, 2.0]
    dist.barrier()


def test_mpiexec_n_1_is_the_one_process_run(no_communicator, monkeypatch):
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "1")
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    assert isinstance(dist.init(), SingleProcess)


def test_several_processes_without_mpi4py_say_what_to_install(no_communicator, monkeypatch):
    monkeypatch.setenv("PMI_SIZE", "4")
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    with pytest.raises(
        ImportError, match=r"one of 4 MPI processes.*pip install 'chainrule\[mpi\]'"
    ):
        dist.init()


def test_fit_and_evaluate_with_the_one_process_communicator_change_nothing():
    images, labels = cr.data.load_digits()
    x, y = cr.data.scale(images).reshape(len(images), -1)[:300], labels[:300]
    results = []
    for comm in (None, SingleProcess()):
        cr.manual_seed(0)
        model = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
        opt = optim.Adam(model.parameters(), lr=1e-2)
        history = fit(
            model, nn.CrossEntropyLoss(), opt, (x, y), epochs=2, progress=False, comm=comm
        )
        results.append((history.rows, evaluate(model, nn.CrossEntropyLoss(), (x, y), comm=comm)))
    assert [r["loss"] for r in results[0][0]] == [r["loss"] for r in results[1][0]]
    assert results[0][1] == results[1][1]


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (3, 2, 4, 4)])
def test_sync_batch_norm_op_gradients(shape):
    """On one process SyncBatchNormOp is batch norm: its backward against finite differences."""
    rng = np.random.default_rng(0)
    x = cr.tensor(rng.normal(size=shape), dtype=cr.float64, requires_grad=True)
    w = cr.tensor(rng.normal(size=shape[1]), dtype=cr.float64, requires_grad=True)
    b = cr.tensor(rng.normal(size=shape[1]), dtype=cr.float64, requires_grad=True)
    target = cr.tensor(rng.normal(size=shape), dtype=cr.float64)

    def loss(x, w, b):
        return ((SyncBatchNormOp.apply(x, w, b, comm=SingleProcess()) - target) ** 2).sum()

    assert cr.gradcheck(loss, x, w, b)
    plain = nn.functional.batch_norm(x, None, None, w, b, training=True)
    synced = SyncBatchNormOp.apply(x, w, b, comm=SingleProcess())
    np.testing.assert_allclose(
        synced.detach().numpy(), plain.detach().numpy(), rtol=1e-12, atol=1e-12
    )


def test_convert_sync_batchnorm_shares_weights_and_keeps_the_original_saveable(tmp_path):
    cr.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 3))
    twin = dist.convert_sync_batchnorm(model)
    assert isinstance(twin[1], dist.SyncBatchNorm) and type(model[1]) is nn.BatchNorm2d
    assert twin[0] is model[0] and twin[1].weight is model[1].weight
    assert [id(p) for p in twin.parameters()] == [id(p) for p in model.parameters()]
    assert list(twin.state_dict()) == list(model.state_dict())
    twin(cr.randn(4, 1, 4, 4))  # training mode, one process: an ordinary batch norm step
    assert int(model[1].num_batches_tracked.item()) == 1  # buffers shared, updated in place
    assert model[1].running_mean.numpy().any()
    cr.save(model, tmp_path / "plain")  # the original keeps its plain, saveable layers
    with pytest.raises(TypeError, match="SyncBatchNorm"):
        cr.save(twin, tmp_path / "twin")


def test_collectives_refuse_strided_views_and_unknown_ops():
    comm = mpi.MPIComm.__new__(mpi.MPIComm)  # no MPI needed to reach the checks
    with pytest.raises(ValueError, match="contiguous"):
        comm.broadcast(np.zeros((4, 4))[:, 1])
    with pytest.raises(ValueError, match="op must be one of"):
        comm.all_reduce(np.zeros(3), op="avg")
