"""The default thread count follows the idle cores (chainrule.cores), with a fake clock and fake
CPU-time readings: the decisions, not the speed (that is ``python -m benchmarks.contention``)."""

import pytest

import chainrule as cr
from chainrule import cores, nn, optim


@pytest.fixture
def machine(monkeypatch):
    """A fake machine: ``state`` holds the clock, the machine's busy CPU seconds and ours; the
    BLAS thread count set is recorded instead of applied."""
    state = {"now": 0.0, "busy": 0.0, "own": 0.0, "applied": []}
    monkeypatch.setattr(cores.time, "perf_counter", lambda: state["now"])
    monkeypatch.setattr(cores, "busy_seconds", lambda: state["busy"])
    monkeypatch.setattr(cores, "own_seconds", lambda: state["own"])
    monkeypatch.setattr(cores, "_apply", lambda blas, pool: state["applied"].append((blas, pool)))
    return state


def run_for(state, watch, seconds, others, ours):
    """Advance the fake machine by ``seconds`` with ``others`` and ``ours`` cores busy; tick."""
    state["now"] += seconds
    state["busy"] += seconds * (others + ours)
    state["own"] += seconds * ours
    watch.tick()


@pytest.mark.parametrize(
    "idle, cores_, expected",
    [(2.0, 2, 2), (1.8, 2, 2), (1.7, 2, 1), (1.0, 2, 1), (0.1, 2, 1), (7.9, 8, 8), (3.5, 8, 3)],
)
def test_threads_for_whole_idle_cores(idle, cores_, expected):
    assert cores.threads_for(idle, cores_) == expected


def test_starts_on_one_thread_then_takes_the_idle_cores(machine):
    watch = cores.CoreWatch(cores=4)
    watch.tick()
    assert machine["applied"] == [(1, 1)]  # the safe start
    run_for(machine, watch, cores.FIRST_LOOK, others=0.0, ours=1.0)
    assert watch.threads == 4 and machine["applied"][-1] == (4, 4)
    assert watch.others == pytest.approx(0.0)


def test_gives_cores_back_when_others_get_busy_and_takes_them_again(machine):
    watch = cores.CoreWatch(cores=2)
    watch.tick()
    run_for(machine, watch, cores.FIRST_LOOK, others=0.05, ours=1.0)
    assert watch.threads == 2
    run_for(machine, watch, cores.LOOK_EVERY, others=1.3, ours=0.7)  # two busy programs
    assert watch.threads == 1 and watch.others == pytest.approx(1.3)
    run_for(machine, watch, cores.LOOK_EVERY, others=0.9, ours=1.0)  # one busy program
    assert watch.threads == 1
    run_for(machine, watch, cores.LOOK_EVERY, others=0.1, ours=1.0)  # quiet again
    assert watch.threads == 2
    counts = [blas for blas, _ in machine["applied"]]
    assert [n for k, n in enumerate(counts) if k == 0 or n != counts[k - 1]] == [1, 2, 1, 2]


@pytest.mark.parametrize("faster", cores.ARRANGEMENTS)
def test_tries_both_ways_to_use_the_threads_and_keeps_the_faster(machine, faster):
    watch = cores.CoreWatch(cores=2, fixed=2)
    seconds = {"blas": 0.2, "pool": 0.2}
    seconds[faster] = 0.1

    def step():
        pool_only = machine["applied"][-1] == (1, 2)
        run_for(machine, watch, seconds["pool" if pool_only else "blas"], others=0.0, ours=2.0)

    watch.tick()
    assert machine["applied"] == [(2, 2)]
    for _ in range(4 * cores.TRIAL_STEPS + 4):
        step()
    assert watch.trial is None and watch.arrangement == faster
    assert (1, 2) in machine["applied"]  # the pool way was tried: one BLAS thread, a pool of 2
    assert machine["applied"][-1] == ((1, 2) if faster == "pool" else (2, 2))
    tried = len(machine["applied"])
    for _ in range(10):
        step()
    assert len(machine["applied"]) == tried  # settled until the next trial
    machine["now"] += cores.TRY_AGAIN_AFTER
    for _ in range(4 * cores.TRIAL_STEPS + 4):
        step()
    assert len(machine["applied"]) > tried and watch.arrangement == faster


def test_one_thread_has_nothing_to_try(machine):
    watch = cores.CoreWatch(cores=2, fixed=1)
    for _ in range(20):
        run_for(machine, watch, 0.3, others=0.0, ours=1.0)
    assert set(machine["applied"]) == {(1, 1)} and watch.trial is None


def test_looks_only_every_half_second(machine):
    watch = cores.CoreWatch(cores=2)
    watch.tick()
    run_for(machine, watch, cores.FIRST_LOOK, others=0.0, ours=1.0)
    for _ in range(10):  # steps in between: no look, even if the machine got busy
        run_for(machine, watch, cores.LOOK_EVERY / 20, others=2.0, ours=0.0)
    assert watch.threads == 2
    run_for(machine, watch, cores.LOOK_EVERY / 2, others=2.0, ours=0.0)
    assert watch.threads == 1


def test_without_proc_stat_the_load_average_stands_in(machine, monkeypatch):
    monkeypatch.setattr(cores, "busy_seconds", lambda: None)
    monkeypatch.setattr(cores.os, "getloadavg", lambda: (3.0, 3.0, 3.0), raising=False)
    watch = cores.CoreWatch(cores=4)
    watch.tick()
    run_for(machine, watch, cores.FIRST_LOOK, others=0, ours=1)
    assert watch.others == pytest.approx(2.0)  # 3 running, one of them ours
    assert watch.threads == 2


def test_set_num_threads_fixes_the_count_and_auto_watches_again():
    before = cr.get_num_threads()
    try:
        cr.set_num_threads(1)
        assert cores.watching().fixed == 1 and cr.get_num_threads() == 1
        cr.set_num_threads("auto")
        assert cores.watching().fixed is None
    finally:
        cr.set_num_threads(before)
        cr.set_num_threads("auto")


@pytest.mark.parametrize("bad", [0, -2, 1.5, "four", True, None])
def test_set_num_threads_names_a_bad_value(bad):
    with pytest.raises(ValueError, match="positive integer or 'auto'"):
        cr.set_num_threads(bad)


def test_every_optimizer_step_lets_the_watch_look(monkeypatch):
    looks = []
    monkeypatch.setattr(
        cores, "_watch", type("Watch", (), {"tick": lambda self: looks.append(1)})()
    )
    model = nn.Linear(3, 1)
    for opt in (optim.SGD(model.parameters(), lr=0.1), optim.Adam(model.parameters())):
        model(cr.ones(2, 3)).sum().backward()
        opt.step()
    lbfgs = optim.LBFGS(model.parameters(), max_iter=2)

    def closure():
        lbfgs.zero_grad()
        loss = model(cr.ones(2, 3)).pow(2).sum()
        loss.backward()
        return loss

    lbfgs.step(closure)
    assert len(looks) == 3


def test_the_machine_readings_are_sane():
    own = cores.own_seconds()
    assert own >= 0
    busy = cores.busy_seconds()
    assert busy is None or busy >= own - 1  # the machine used at least what we used
    assert cores.available_cores() >= 1


@pytest.mark.parametrize("threads, watched", [("auto", True), ("1", False)])
def test_train_threads_option(tmp_path, threads, watched):
    from chainrule.cli import main

    out = tmp_path / "run"
    try:
        argv = ["train", "--epochs", "1", "--out", str(out), "--quiet", "--threads", threads]
        assert main(argv) == 0
        assert (cores.watching().fixed is None) == watched
    finally:
        cr.set_num_threads("auto")


def test_a_fixed_arrangement_is_kept(machine):
    watch = cores.CoreWatch(cores=2, fixed=2, arrangement="pool")
    for _ in range(30):
        run_for(machine, watch, 0.3, others=0.0, ours=2.0)
    assert set(machine["applied"]) == {(1, 2)} and watch.trial is None


def test_set_num_threads_names_a_bad_arrangement():
    with pytest.raises(ValueError, match="arrangement 'gpu'"):
        cr.set_num_threads(2, arrangement="gpu")


def test_get_num_threads_counts_the_pool_way_too():
    try:
        cr.set_num_threads(2, arrangement="pool")
        assert cr.get_num_threads() == 2
        from chainrule import threads

        assert threads.blas_threads() == 1  # the products on one thread, the pool on two
    finally:
        cr.set_num_threads("auto")
