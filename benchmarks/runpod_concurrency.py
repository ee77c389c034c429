"""How well remote trials run side by side: fixed-length jobs through the loopback RunPod
endpoint with 1, 2, 4 and 6 workers.

The jobs run the real handler under the real SDK worker loop, and the client is the real
``RunPodExecutor`` (status polling, progress events into a ``ProgressHub``), but the handler is
in its benchmark mode (``HPO_NB_SIMULATE_EPOCH_S``): each epoch sleeps instead of training,
because six TensorFlow trainings on a 2-core machine cannot run in parallel. So this measures
the job plumbing (queue, take, progress, result, client turnaround), not training speed.

For each worker count W the client keeps W jobs in flight, ``rounds * W`` jobs in all, on an
endpoint with exactly W workers. Parallel efficiency = sum of the jobs' execution times (from
the status API) / (W * wall time). Target: >= 0.95 at 6 workers. Prints ``efficiency_6 <n>`` last.

    .venv/bin/python benchmarks/runpod_concurrency.py            # about 4 minutes on 2 cores
    .venv/bin/python benchmarks/runpod_concurrency.py --quick    # smoke run, about 1 minute
"""

from __future__ import annotations

import argparse
import logging
import threading
import time

import benchlib


def measure(workers: int, rounds: int, epochs: int, epoch_s: float, poll_s: float) -> dict[str, float]:
    from hpo_nb.executors.base import TrialJob
    from hpo_nb.executors.runpod import RunPodExecutor
    from hpo_nb.progress import ProgressHub
    from hpo_nb.executors.runpod.loopback import LoopbackEndpoint
    from hpo_nb.spec import TrialSpec

    env = {"HPO_NB_SIMULATE_EPOCH_S": str(epoch_s)}
    with LoopbackEndpoint(workers=workers, worker_env=env) as endpoint:
        endpoint.wait_ready(timeout=600)
        hub = ProgressHub(rounds * workers, concurrency=workers)
        ex = RunPodExecutor(concurrency=workers, endpoint_id="local", api_key="benchmark-key",
                            base_url=endpoint.url, poll_interval_s=poll_s)
        ex.prepare(hub.publish)
        specs = [TrialSpec(trial_number=i, dataset="digits", params={"filters": 8}, max_epochs=epochs)
                 for i in range(rounds * workers)]
        started = time.perf_counter()
        futures = [ex.submit(TrialJob(spec=s, publish=hub.publish, stop=threading.Event())) for s in specs]
        outcomes = [f.result() for f in futures]
        wall = time.perf_counter() - started
        ex.shutdown()
    if any(o.state != "complete" or not o.extra.get("simulated") for o in outcomes):
        raise SystemExit(f"a job did not complete: {[o.state for o in outcomes]}")
    execution = sum(o.extra["execution_s"] for o in outcomes)
    return {"workers": workers, "jobs": len(outcomes), "wall_s": wall, "execution_s": execution,
            "efficiency": execution / (workers * wall),
            "mean_delay_s": sum(o.extra["delay_s"] for o in outcomes) / len(outcomes)}


def main(argv: list[str] | None = None) -> float:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", default="1,2,4,6", help="worker counts (default 1,2,4,6)")
    p.add_argument("--rounds", type=int, default=2, help="jobs per worker (default 2)")
    p.add_argument("--epochs", type=int, default=10, help="epochs per job (default 10)")
    p.add_argument("--epoch-s", type=float, default=2.0, help="seconds per simulated epoch (default 2.0)")
    p.add_argument("--poll-s", type=float, default=1.0, help="client status poll interval (default 1.0, the default)")
    p.add_argument("--quick", action="store_true", help="2 and 6 workers, 1 round of 4 s jobs")
    args = p.parse_args(argv)
    if args.quick:
        args.workers, args.rounds, args.epochs, args.epoch_s = "2,6", 1, 4, 1.0
    benchlib.quiet()
    logging.getLogger("hpo_nb").setLevel(logging.ERROR)
    print(benchlib.machine())
    print(f"jobs of {args.epochs} x {args.epoch_s:g} s (simulated epochs), {args.rounds} per worker, "
          f"client poll {args.poll_s:g} s")
    print(f"{'workers':>7} {'jobs':>5} {'wall s':>8} {'exec s':>8} {'delay s':>8} {'efficiency':>10}")
    result = {}
    for w in (int(x) for x in args.workers.split(",")):
        r = measure(w, args.rounds, args.epochs, args.epoch_s, args.poll_s)
        result[w] = r["efficiency"]
        print(f"{w:>7} {r['jobs']:>5} {r['wall_s']:>8.1f} {r['execution_s']:>8.1f} {r['mean_delay_s']:>8.2f} "
              f"{r['efficiency']:>10.3f}", flush=True)
    last = max(result)
    print(f"efficiency_{last} {result[last]:.3f}")
    return result[last]


if __name__ == "__main__":
    main()
