"""The hub under concurrent publishers, and the snapshot arithmetic renderers rely on."""

import threading
import time

from hpo_nb.progress import (EpochEnded, EpochProgress, Notice, ProgressHub, TrialFinished, TrialStarted,
                             TrialStatus)


def test_many_threads_lose_and_reorder_nothing():
    trials, epochs, batches = 16, 12, 20
    hub = ProgressHub(total_trials=trials, concurrency=trials)
    seen: dict[int, list[int]] = {t: [] for t in range(trials)}
    violations: list[str] = []

    def check(snap):
        for r in snap.running:
            last = seen[r.trial][-1] if seen[r.trial] else 0
            if r.epochs_done < last:
                violations.append(f"trial {r.trial} went back from {last} to {r.epochs_done}")
            seen[r.trial].append(r.epochs_done)
        if snap.performed + len(snap.running) > snap.total_trials:
            violations.append("more trials than the budget")

    sub = hub.subscribe(check, max_hz=200)
    barrier = threading.Barrier(trials)

    def train(t: int) -> None:
        barrier.wait()
        hub.publish(TrialStarted(t, epochs))
        for e in range(1, epochs + 1):
            for b in range(batches):
                hub.publish(EpochProgress(t, e, epochs, b + 1, batches, loss=1.0 / e))
            hub.publish(EpochEnded(t, e, epochs, {"val_accuracy": e / epochs}))
            snap = hub.snapshot()
            mine = next(r for r in snap.running if r.trial == t)
            assert mine.epochs_done == e  # my own epochs are never lost
        hub.publish(TrialFinished(t, "complete", accuracy=t / 100, score=t / 100, duration_s=1.0))

    threads = [threading.Thread(target=train, args=(t,)) for t in range(trials)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    hub.close()
    sub.join()
    final = hub.snapshot()
    assert not violations, violations[:5]
    assert final.completed == trials and not final.running
    assert final.best_score == (trials - 1) / 100
    assert not sub.errors


def test_stale_remote_updates_are_ignored():
    hub = ProgressHub(1)
    hub.publish(TrialStarted(0, 5))
    hub.publish(EpochEnded(0, 2, 5, {}))
    hub.publish(EpochProgress(0, 3, 5, 6, 10))
    hub.publish(EpochProgress(0, 2, 5, 9, 10))  # arrived late
    hub.publish(EpochProgress(0, 3, 5, 2, 10))  # older batch of the current epoch
    r = hub.snapshot().running[0]
    assert (r.epoch, r.epochs_done, r.epoch_fraction) == (3, 2, 0.6)
    assert abs(r.overall_fraction - 2.6 / 5) < 1e-9


def test_snapshot_counts_best_and_eta():
    hub = ProgressHub(total_trials=6, mode="health", concurrency=2)
    for n, (state, acc, score) in enumerate([("complete", 0.9, 0.8), ("complete", 0.95, 0.7),
                                              ("pruned", 0.5, None), ("failed", None, None),
                                              ("stopped", None, None)]):
        hub.publish(TrialStarted(n, 3))
        hub.publish(TrialFinished(n, state, acc, score, duration_s=10.0))
    hub.publish(Notice("RunPod unreachable: running locally"))
    s = hub.snapshot()
    assert (s.completed, s.pruned, s.failed, s.stopped, s.performed) == (2, 1, 1, 1, 4)
    assert s.best_accuracy == 0.95 and s.best_score == 0.8 and s.best_trial.trial == 0
    assert s.mean_duration_s == 10.0
    assert s.eta_s == (6 - 4) * 10.0 / 2
    assert s.notices == ("RunPod unreachable: running locally",)


def test_queue_time_is_not_trial_time():
    hub = ProgressHub(1)
    hub.publish(TrialStarted(0, 2, status="queued", where="runpod", time=time.time() - 100))
    hub.publish(TrialStatus(0, "running", "runpod:worker-1"))
    r = hub.snapshot().running[0]
    assert r.status == "running" and r.where == "runpod:worker-1"
    assert time.time() - r.started_at < 5


def test_subscriber_gets_final_snapshot_and_rate_is_bounded():
    hub = ProgressHub(1)
    calls = []
    hub.subscribe(calls.append, max_hz=5)
    hub.publish(TrialStarted(0, 1))
    for b in range(500):
        hub.publish(EpochProgress(0, 1, 1, b, 500))
    hub.close()
    assert calls[-1].done
    assert len(calls) < 50  # 500 events, a handful of renders


def test_closing_the_hub_renders_the_final_snapshot_without_waiting_out_the_rate_limit():
    hub = ProgressHub(1)
    calls = []
    hub.subscribe(calls.append, max_hz=0.05)  # one render per 20 s at most
    hub.publish(TrialStarted(0, 1))
    while not calls:
        time.sleep(0.01)  # the first render happened; the subscriber now pauses for 20 s
    start = time.monotonic()
    hub.close()
    assert calls[-1].done and time.monotonic() - start < 10
