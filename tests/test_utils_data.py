"""cr.utils.data against torch.utils.data: datasets, samplers, collate, DataLoader, workers."""

import collections
import itertools
import threading
import time

import numpy as np
import pytest

import chainrule as cr
from chainrule.utils import data

# -- helpers ---------------------------------------------------------------------------------------


@pytest.fixture
def torch():
    return pytest.importorskip("torch", reason="install the dev extra for the PyTorch cross-check")


def as_numpy(batch):
    """A nested batch with every tensor (ours or PyTorch's) replaced by (dtype name, values)."""
    if hasattr(batch, "detach"):
        batch = batch.detach().numpy()
    elif isinstance(batch, cr.Tensor):
        batch = cr.tensor(batch).numpy()
    if isinstance(batch, np.ndarray):
        return (batch.dtype.name, batch.tolist())
    if isinstance(batch, dict):
        return {k: as_numpy(v) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch).__name__, [as_numpy(v) for v in batch]
    if isinstance(batch, (list, tuple)):
        return type(batch).__name__, [as_numpy(v) for v in batch]
    return batch


def same_batches(ours, theirs):
    ours, theirs = list(ours), list(theirs)
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert as_numpy(a) == as_numpy(b)


class Squares(data.Dataset):
    """Items as a tutorial writes them: a tuple of an array, a float and an int."""

    def __len__(self):
        return 7

    def __getitem__(self, i):
        return np.array([i, -i], dtype=np.float32), float(i) / 2, i * i


Point = collections.namedtuple("Point", ["x", "y"])

EXAMPLES = {
    "tuples": [(np.array([1.0, 2.0]), 3, 0.5), (np.array([4.0, 5.0]), 6, 1.5)],
    "dicts": [
        {"a": np.ones(2, np.float32), "b": "cat"},
        {"a": np.zeros(2, np.float32), "b": "dog"},
    ],
    "named tuples": [Point(1, 2.0), Point(3, 4.0)],
    "lists": [[1, 2], [3, 4]],
    "numpy scalars": [np.float32(1.5), np.float32(2.5)],
    "bools": [True, False],
    "nested": [{"p": (np.int64(1), [2.0, 3.0])}, {"p": (np.int64(4), [5.0, 6.0])}],
}


# -- collate ---------------------------------------------------------------------------------------


@pytest.mark.torch
@pytest.mark.parametrize("name", EXAMPLES)
def test_default_collate_matches_pytorch(torch, name):
    from torch.utils.data import default_collate

    ours, theirs = data.default_collate(EXAMPLES[name]), default_collate(EXAMPLES[name])
    assert as_numpy(ours) == as_numpy(theirs)


@pytest.mark.torch
@pytest.mark.parametrize("name", EXAMPLES)
def test_default_convert_matches_pytorch(torch, name):
    from torch.utils.data import default_convert

    for example in EXAMPLES[name]:
        assert as_numpy(data.default_convert(example)) == as_numpy(default_convert(example))


def test_collate_refuses_what_it_cannot_stack():
    with pytest.raises(RuntimeError, match=r"same shape.*\(2,\) at entry 0 and \(3,\) at entry 1"):
        data.default_collate([np.zeros(2), np.zeros(3)])
    with pytest.raises(TypeError, match="found <class 'object'>"):
        data.default_collate([object(), object()])
    with pytest.raises(RuntimeError, match="equal size"):
        data.default_collate([[1, 2], [3]])


def test_collating_tensors_that_require_grad_keeps_the_graph():
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    batch = data.default_collate([w * 2, w * 3])
    batch.sum().backward()
    np.testing.assert_allclose(w.grad, [5.0, 5.0])


# -- datasets --------------------------------------------------------------------------------------


@pytest.mark.torch
def test_tensor_dataset_items_and_loader_batches_match_pytorch(torch):
    x = np.random.default_rng(0).standard_normal((10, 3)).astype(np.float32)
    y = np.arange(10)
    ours = data.TensorDataset(cr.tensor(x), cr.tensor(y))
    theirs = torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(y))
    assert len(ours) == len(theirs) == 10
    assert as_numpy(ours[3]) == as_numpy(theirs[3])
    assert all(isinstance(t, cr.Tensor) for t in ours[3])
    for options in (
        {},
        {"batch_size": 4},
        {"batch_size": 4, "drop_last": True},
        {"batch_size": None},
    ):
        same_batches(
            data.DataLoader(ours, **options), torch.utils.data.DataLoader(theirs, **options)
        )


@pytest.mark.torch
@pytest.mark.parametrize("batch_size", [1, 3, None])
def test_item_wise_dataset_batches_match_pytorch(torch, batch_size):
    same_batches(
        data.DataLoader(Squares(), batch_size=batch_size),
        torch.utils.data.DataLoader(Squares(), batch_size=batch_size),
    )


def test_tensor_dataset_keeps_tensors_and_wraps_arrays_without_copy():
    x = np.zeros((4, 2), dtype=np.float64)
    t = cr.tensor([1, 2, 3, 4])
    dataset = data.TensorDataset(x, t)
    assert dataset.tensors[1] is t and np.shares_memory(dataset.tensors[0].numpy(), x)
    assert dataset.tensors[0].dtype == np.float64
    with pytest.raises(ValueError, match="same length"):
        data.TensorDataset(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="at least one"):
        data.TensorDataset()


@pytest.mark.torch
def test_subset_and_concat_dataset_match_pytorch(torch):
    base = list(range(10, 20))
    ours = data.Subset(base, [3, 1, 4]) + data.Subset(base, [9])
    theirs = torch.utils.data.Subset(base, [3, 1, 4]) + torch.utils.data.Subset(base, [9])
    assert [ours[i] for i in range(-4, 4)] == [theirs[i] for i in range(-4, 4)]
    assert len(ours) == len(theirs) == 4
    tensors = data.TensorDataset(np.arange(10, 20))
    assert data.Subset(tensors, [3, 1, 4])[[0, 2]][0].tolist() == [13, 14]
    with pytest.raises(IndexError):
        ours[4]


def test_subset_of_a_tensor_dataset_takes_the_fast_path_with_the_same_batches():
    x = np.arange(20.0).reshape(10, 2)
    subset = data.Subset(data.TensorDataset(x), [7, 2, 5, 0])

    class ItemWise(data.Subset):  # same examples, one __getitem__ at a time
        def __getitem__(self, i):
            return super().__getitem__(i)

        def __getitems__(self, indices):
            return [self[i] for i in indices]

    fast = list(data.DataLoader(subset, batch_size=3))
    slow = list(data.DataLoader(ItemWise(subset.dataset, subset.indices), batch_size=3))
    assert as_numpy(fast) == as_numpy(slow)
    np.testing.assert_array_equal(fast[0][0].numpy(), x[[7, 2, 5]])


@pytest.mark.torch
@pytest.mark.parametrize(
    "n, lengths",
    [(10, [3, 7]), (10, [0.3, 0.7]), (11, [0.5, 0.5]), (7, [0.25, 0.25, 0.5]), (30, [0.1] * 10)],
)
def test_random_split_lengths_match_pytorch(torch, n, lengths):
    ours = data.random_split(range(n), lengths, generator=cr.Generator().manual_seed(0))
    theirs = torch.utils.data.random_split(
        range(n), lengths, generator=torch.Generator().manual_seed(0)
    )
    assert [len(s) for s in ours] == [len(s) for s in theirs]
    everything = sorted(i for s in ours for i in s)
    assert everything == list(range(n))


def test_random_split_is_reproducible_from_its_generator_or_the_global_seed():
    def split(generator=None):
        return [list(s) for s in data.random_split(range(50), [0.6, 0.4], generator=generator)]

    assert split(cr.Generator().manual_seed(3)) == split(cr.Generator().manual_seed(3))
    assert split(cr.Generator().manual_seed(3)) != split(cr.Generator().manual_seed(4))
    cr.manual_seed(5)
    first = split()
    cr.manual_seed(5)
    assert split() == first


@pytest.mark.torch
@pytest.mark.parametrize("lengths", [[3, 6], [0.5, 0.6], [-0.5, 1.5], [5, 5.5]])
def test_random_split_refuses_bad_lengths_where_pytorch_does(torch, lengths):
    with pytest.raises(ValueError):
        torch.utils.data.random_split(range(10), lengths)
    with pytest.raises(ValueError, match="random_split"):
        data.random_split(range(10), lengths)


def test_random_split_warns_about_an_empty_split():
    with pytest.warns(UserWarning, match="empty"):
        data.random_split(range(2), [0.1, 0.1, 0.8])


# -- samplers and shuffling --------------------------------------------------------------------------


def epoch_order(loader):
    return [int(i) for batch in loader for i in batch[0].numpy()]


def test_shuffling_gives_a_new_permutation_every_epoch_reproducible_from_the_generator():
    dataset = data.TensorDataset(np.arange(30))
    loader = data.DataLoader(
        dataset, batch_size=4, shuffle=True, generator=cr.Generator().manual_seed(1)
    )
    first, second = epoch_order(loader), epoch_order(loader)
    assert sorted(first) == sorted(second) == list(range(30))
    assert first != second and first != list(range(30))
    again = data.DataLoader(
        dataset, batch_size=4, shuffle=True, generator=cr.Generator().manual_seed(1)
    )
    assert [epoch_order(again), epoch_order(again)] == [first, second]


def test_shuffling_without_a_generator_follows_manual_seed():
    loader = data.DataLoader(data.TensorDataset(np.arange(30)), batch_size=4, shuffle=True)
    cr.manual_seed(2)
    first = epoch_order(loader)
    cr.manual_seed(2)
    assert epoch_order(loader) == first


def test_seeded_epochs_depend_on_seed_and_epoch_only_and_resume_mid_epoch():
    dataset = data.TensorDataset(np.arange(30))
    loader = data.DataLoader(dataset, batch_size=4, shuffle=True, seed=9)
    epochs = [epoch_order(loader) for _ in range(3)]
    assert epochs[0] != epochs[1]
    assert epoch_order(loader.epoch(1)) == epochs[1]
    rest = [b[0].numpy().tolist() for b in loader.epoch(2, start_batch=5)]
    assert sum(rest, []) == epochs[2][20:]
    with pytest.raises(ValueError, match="not both"):
        data.DataLoader(dataset, shuffle=True, seed=1, generator=cr.Generator())


@pytest.mark.torch
def test_custom_sampler_and_batch_sampler_match_pytorch(torch):
    dataset = list(range(100, 110))
    order = [9, 0, 8, 1, 7, 2]
    same_batches(
        data.DataLoader(dataset, batch_size=4, sampler=order),
        torch.utils.data.DataLoader(dataset, batch_size=4, sampler=order),
    )
    batches = [[1, 2], [5], [0, 9, 3]]
    ours = data.DataLoader(dataset, batch_sampler=batches)
    same_batches(ours, torch.utils.data.DataLoader(dataset, batch_sampler=batches))
    assert len(ours) == 3
    sampler = data.BatchSampler(data.SequentialSampler(dataset), 3, drop_last=False)
    assert list(sampler) == list(
        torch.utils.data.BatchSampler(torch.utils.data.SequentialSampler(dataset), 3, False)
    )
    same_batches(  # the batch-at-once idiom: dataset[list of indices] is a whole batch
        data.DataLoader(data.TensorDataset(np.arange(10)), sampler=sampler, batch_size=None),
        torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(torch.arange(10)), sampler=sampler, batch_size=None
        ),
    )


def test_random_samplers_draw_what_they_promise():
    g = cr.Generator().manual_seed(0)
    with_replacement = list(
        data.RandomSampler(range(5), replacement=True, num_samples=50, generator=g)
    )
    assert len(with_replacement) == 50 and set(with_replacement) <= set(range(5))
    chained = list(data.RandomSampler(range(4), num_samples=10, generator=g))
    assert sorted(chained[:8]) == [0, 0, 1, 1, 2, 2, 3, 3] and len(chained) == 10
    assert sorted(data.SubsetRandomSampler([4, 8, 15], generator=g)) == [4, 8, 15]
    weighted = list(data.WeightedRandomSampler([0.0, 1.0, 3.0], 400, generator=g))
    assert 0 not in weighted and 0.6 < weighted.count(2) / 400 < 0.9
    assert sorted(data.WeightedRandomSampler([1, 0, 1, 1], 3, replacement=False, generator=g)) == [
        0,
        2,
        3,
    ]
    with pytest.raises(ValueError, match="num_samples"):
        data.RandomSampler(range(0))
    with pytest.raises(ValueError, match="distinct"):
        data.WeightedRandomSampler([1, 0], 2, replacement=False)
    with pytest.raises(TypeError, match="cr.Generator"):
        list(data.RandomSampler(range(3), generator=np.random.default_rng(0)))


def test_an_infinite_sampler_draws_lazily():
    """makemore's loader: RandomSampler(replacement=True, num_samples=int(1e10)) once built all
    1e10 indices up front (a 74.5 GiB MemoryError); a pass is now drawn a block at a time."""
    import tracemalloc

    dataset = data.TensorDataset(np.arange(100))
    sampler = data.RandomSampler(dataset, replacement=True, num_samples=int(1e10))
    loader = data.DataLoader(dataset, sampler=sampler, batch_size=32)
    assert len(loader) == -(-int(1e10) // 32)
    tracemalloc.start()
    try:
        batches, iterated = iter(loader), iter(sampler)
        xs = [next(batches)[0] for _ in range(100)]
        indices = [next(iterated) for _ in range(5000)]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, f"{peak} bytes traced for 100 batches"
    assert all(x.shape == (32,) for x in xs) and set(indices) <= set(range(100))
    weighted = data.WeightedRandomSampler([1.0] * 10, int(1e10))
    assert len(list(itertools.islice(weighted, 3000))) == 3000


@pytest.mark.parametrize("batch_size", [3, 7, 1024, 1500])
def test_loader_batches_are_the_sampler_order_across_blocks(batch_size):
    """Batches straddling two blocks (permutations chained, draws in blocks) are cut right: the
    loader's indices are the sampler's, in order, and a weighted pass is the one choice() draws."""
    n = 2500
    dataset = data.TensorDataset(np.arange(10))
    for make in (
        lambda g: data.RandomSampler(dataset, num_samples=n, generator=g),
        lambda g: data.RandomSampler(dataset, replacement=True, num_samples=n, generator=g),
        lambda g: data.WeightedRandomSampler(np.arange(10.0), n, generator=g),
    ):
        expected = list(make(cr.Generator().manual_seed(3)))
        loader = data.DataLoader(
            dataset, sampler=make(cr.Generator().manual_seed(3)), batch_size=batch_size
        )
        got = [batch[0].numpy() for batch in loader]
        assert [len(b) for b in got] == [batch_size] * (n // batch_size) + [n % batch_size] * (
            n % batch_size > 0
        )
        assert np.concatenate(got).tolist() == expected
    p = np.arange(10.0) / 45
    assert expected == np.random.default_rng(3).choice(10, size=n, p=p).tolist()


@pytest.mark.torch
@pytest.mark.parametrize(
    "options",
    [
        {"sampler": [0, 1], "shuffle": True},
        {"batch_sampler": [[0]], "batch_size": 2},
        {"batch_sampler": [[0]], "drop_last": True},
        {"batch_size": None, "drop_last": True},
        {"num_workers": -1},
        {"timeout": -1},
        {"prefetch_factor": 2},
        {"persistent_workers": True},
        {"batch_size": 0},
    ],
)
def test_bad_options_are_refused_where_pytorch_refuses_them(torch, options):
    with pytest.raises(ValueError):
        torch.utils.data.DataLoader(list(range(4)), **options)
    with pytest.raises(ValueError, match="DataLoader|batch_size"):
        data.DataLoader(list(range(4)), **options)


def test_pin_memory_and_the_worker_options_are_accepted():
    loader = data.DataLoader(
        list(range(6)),
        batch_size=2,
        pin_memory=True,
        num_workers=1,
        prefetch_factor=3,
        persistent_workers=True,
        pin_memory_device="",
        in_order=False,
    )
    assert [b.tolist() for b in loader] == [[0, 1], [2, 3], [4, 5]]
    assert loader.batch_size == 2 and isinstance(loader.batch_sampler, data.BatchSampler)


# -- worker threads ----------------------------------------------------------------------------------


class NpyFiles(data.Dataset):
    """A dataset whose examples are files, read in __getitem__."""

    def __init__(self, folder, n):
        self.paths = []
        for i in range(n):
            self.paths.append(folder / f"{i}.npy")
            np.save(self.paths[-1], np.full((2, 3), i, dtype=np.float32))

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return np.load(self.paths[i]), i


def test_worker_threads_give_the_same_batches_in_the_same_order(tmp_path):
    dataset = NpyFiles(tmp_path, 23)
    plain = data.DataLoader(dataset, batch_size=4, shuffle=True, seed=0)
    threaded = data.DataLoader(dataset, batch_size=4, shuffle=True, seed=0, num_workers=3)
    for epoch in range(2):
        assert as_numpy(list(plain.epoch(epoch))) == as_numpy(list(threaded.epoch(epoch)))


def test_workers_really_load_at_the_same_time():
    """Two __getitem__ calls must be in flight together, or the barrier times out."""
    barrier = threading.Barrier(2, timeout=10)

    class Meeting(data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            barrier.wait()  # returns only when another worker is waiting too
            return i

    loader = data.DataLoader(Meeting(), batch_size=1, num_workers=2)
    assert [int(b.item()) for b in loader] == [0, 1, 2, 3]


def test_worker_info_and_init_fn():
    started, seen = [], set()

    class WhoLoads(data.Dataset):
        def __len__(self):
            return 8

        def __getitem__(self, i):
            info = data.get_worker_info()
            seen.add((info.id, info.num_workers, info.dataset is self))
            return i

    loader = data.DataLoader(WhoLoads(), batch_size=2, num_workers=2, worker_init_fn=started.append)
    assert sum(len(b) for b in loader) == 8
    assert sorted(started) in ([0], [0, 1])  # a worker starts when it is first needed
    assert {s[1:] for s in seen} == {(2, True)} and {s[0] for s in seen} <= {0, 1}
    assert data.get_worker_info() is None


def test_an_error_in_a_worker_reaches_the_loop_and_timeouts_are_reported():
    class Broken(data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            if i == 2:
                raise KeyError("example 2 is missing")
            return i

    loader = data.DataLoader(Broken(), batch_size=1, num_workers=2)
    with pytest.raises(KeyError, match="example 2"):
        list(loader)

    class Slow(data.Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            time.sleep(0.5)
            return i

    with pytest.raises(RuntimeError, match="timed out after 0.05 seconds"):
        list(data.DataLoader(Slow(), num_workers=1, timeout=0.05))


def test_leaving_an_epoch_early_stops_the_workers():
    loader = data.DataLoader(list(range(1000)), batch_size=1, num_workers=2)
    before = threading.active_count()
    for i, _ in enumerate(loader):
        if i == 3:
            break
    deadline = time.monotonic() + 5
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threading.active_count() <= before


# -- a PyTorch training loop, run as written ----------------------------------------------------------


@pytest.mark.torch
def test_a_pytorch_training_loop_with_a_data_loader_gives_pytorch_numbers(torch):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((50, 3)), rng.standard_normal((50, 1))
    w0 = rng.standard_normal((1, 3))

    def train(lib, utils_data):
        model = lib.nn.Linear(3, 1).double()
        model.load_state_dict({"weight": lib.tensor(w0), "bias": lib.tensor(np.zeros(1))})
        opt = lib.optim.SGD(model.parameters(), lr=0.05)
        dataset = utils_data.TensorDataset(lib.tensor(x), lib.tensor(y))
        losses = []
        for _ in range(3):
            for xb, yb in utils_data.DataLoader(dataset, batch_size=8, drop_last=True):
                loss = ((model(xb) - yb) ** 2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(loss.item())
        return losses, np.asarray(model.weight.detach().numpy())

    ours, theirs = train(cr, data), train(torch, torch.utils.data)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-10, atol=1e-12)


# -- Generator --------------------------------------------------------------------------------------


@pytest.mark.torch
def test_generator_interface_matches_pytorch(torch):
    ours, theirs = cr.Generator(), torch.Generator()
    assert ours.initial_seed() == theirs.initial_seed()
    assert ours.manual_seed(5) is ours
    for seed in (0, 5, -1, -(2**63), 2**64 - 1):
        assert ours.manual_seed(seed).initial_seed() == theirs.manual_seed(seed).initial_seed()
    for bad in (2**64, -(2**63) - 1):
        with pytest.raises(ValueError):
            ours.manual_seed(bad)
    with pytest.raises(TypeError):
        ours.manual_seed(1.5)
    with pytest.raises(RuntimeError, match="cuda"):
        cr.Generator("cuda")


def test_generator_state_round_trip_replays_the_stream():
    g = cr.Generator().manual_seed(11)
    g.rng.random(3)
    state = g.get_state()
    assert isinstance(state, cr.Tensor) and state.dtype == np.uint8
    expected = g.rng.random(5)
    g.manual_seed(0)
    np.testing.assert_array_equal(g.set_state(state).rng.random(5), expected)
    assert g.initial_seed() == 11
    seed = g.seed()
    assert g.initial_seed() == seed and 0 <= seed < 2**64
    with pytest.raises(ValueError, match="get_state"):
        g.set_state(cr.zeros(3))


def test_fit_with_a_threaded_loader_trains_exactly_as_without_workers():
    from chainrule.train import fit

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((64, 4)).astype(np.float32), rng.integers(0, 3, 64)

    def train(num_workers):
        cr.manual_seed(0)
        model = cr.nn.Linear(4, 3)
        loader = data.DataLoader(
            (x, y), batch_size=8, shuffle=True, seed=4, num_workers=num_workers
        )
        history = fit(
            model,
            cr.nn.CrossEntropyLoss(),
            cr.optim.SGD(model.parameters(), lr=0.1),
            loader,
            epochs=3,
            progress=False,
        )
        return history["loss"], model.weight.detach().numpy()

    (losses, weight), (losses_threaded, weight_threaded) = train(0), train(2)
    assert losses == losses_threaded
    np.testing.assert_array_equal(weight, weight_threaded)
