"""What the live notebook dashboard costs a trial, and how fresh it is.

In a real IPython kernel (started with jupyter_client; this script is the front end and reads
every widget message), the same small search runs with the dashboard attached
(``progress="notebook"``) and with no subscriber at all (``progress="none"``). Runs are interleaved
(the order flips every round) so drift on a shared machine hits both alike; the search space is
fixed, so every trial trains the same model. Reported:

- trial wall time (each trial's ``duration_s``): median per arm and the median of per-round ratios
  dashboard / none, printed last as ``ratio <number>`` (target <= 1.03);
- freshness: for each epoch end (timed in the kernel), the delay until the front end received a
  widget update that shows it: a trial label at a later epoch or at the end of it (its share of the trial reaches epoch/epochs), or the trial's row in
  the gallery (target < 0.5 s; the renderer runs at 5 Hz).

    .venv/bin/python benchmarks/dashboard_overhead.py            # about 3 minutes on 2 cores
    .venv/bin/python benchmarks/dashboard_overhead.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
from typing import Any

import benchlib

# Every parameter fixed: both arms train the very same models.
SPACE = {"conv_blocks": 1, "filters": 16, "kernel_size": 3, "activation": "relu", "pooling": "max",
         "batch_norm": False, "dropout": 0.1, "dense_layers": 0, "dense_units": 64, "optimizer": "adam",
         "learning_rate": 1e-3, "batch_size": 32}

SETUP = """
import json, os, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import hpo_nb
from hpo_nb import Experiment
from hpo_nb.callbacks import EpochProgressCallback

EPOCH_ENDS = []
_original_end = EpochProgressCallback.on_epoch_end
def _timed_end(self, epoch, logs=None):
    _original_end(self, epoch, logs)          # publishes EpochEnded, then we note the time
    EPOCH_ENDS.append((self.trial, epoch + 1, time.time()))
EpochProgressCallback.on_epoch_end = _timed_end

def bench_run(name, progress, runs_dir, **settings):
    EPOCH_ENDS.clear()
    exp = Experiment(dataset="digits", name=name, progress=progress, runs_dir=runs_dir, pruning=False,
                     save_models=False, **settings)
    exp.run()
    durations = [t.duration_s for t in exp.trials if t.state == "complete"]
    print("RESULT " + json.dumps({"durations": durations, "epoch_ends": EPOCH_ENDS}))
"""

LABEL = re.compile(r"Trial (\d+) · epoch (\d+)/(\d+) · (\d+) %")  # the % is the trial's share


class Frontend:
    """A kernel plus the messages it sends, each stamped with the time it arrived here."""

    def __init__(self) -> None:
        from jupyter_client.manager import start_new_kernel

        self.km, self.kc = start_new_kernel(kernel_name="python3")
        self.messages: list[tuple[float, dict[str, Any]]] = []

    def execute(self, code: str, timeout: float = 1800) -> list[str]:
        """Run ``code``; returns its stdout lines (errors raise)."""
        self.messages = []
        out: list[str] = []

        def hook(msg: dict[str, Any]) -> None:
            self.messages.append((time.time(), msg))
            if msg["msg_type"] == "stream":
                out.extend(msg["content"]["text"].splitlines())

        reply = self.kc.execute_interactive(code, timeout=timeout, output_hook=hook)
        if reply["content"]["status"] != "ok":
            tb = "\n".join(reply["content"].get("traceback", []))
            raise RuntimeError(f"kernel error: {reply['content'].get('evalue')}\n{tb}")
        return out

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


def freshness(messages: list[tuple[float, dict[str, Any]]], epoch_ends: list[list[float]]) -> list[float]:
    """Delay from each epoch end to the first widget update that shows it (unseen ends are skipped)."""
    shown: list[tuple[float, int, int]] = []  # (arrival, trial, last epoch it proves ended)
    for arrived, msg in messages:
        if msg["msg_type"] != "comm_msg":
            continue
        value = msg["content"]["data"].get("state", {}).get("value")
        if not isinstance(value, str):
            continue
        if m := LABEL.search(value):
            trial, epoch, total, pct = (int(g) for g in m.groups())
            shown.append((arrived, trial, epoch if pct >= 100 * epoch // total else epoch - 1))
        for trial in re.findall(r'data-trial="(\d+)"', value):  # in the gallery: every epoch ended
            shown.append((arrived, int(trial), 10**9))
    delays = []
    for trial, epoch, ended in epoch_ends:
        seen = [arrived for arrived, t, last in shown if t == trial and last >= epoch and arrived >= ended]
        if seen:
            delays.append(min(seen) - ended)
    return delays


def main(argv: list[str] | None = None) -> float:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5, help="interleaved dashboard/none rounds (default 5)")
    p.add_argument("--trials", type=int, default=2, help="trials per search (default 2)")
    p.add_argument("--epochs", type=int, default=3, help="epochs per trial (default 3)")
    p.add_argument("--concurrency", type=int, default=1, help="trials at once (default 1)")
    p.add_argument("--quick", action="store_true", help="1 round of 1 trial of 1 epoch")
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.trials, args.epochs = 1, 1, 1
    settings = dict(n_trials=args.trials, max_epochs=args.epochs, concurrency=args.concurrency, search_space=SPACE)
    print(f"machine: {benchlib.machine()}")
    print(f"search: digits, {args.trials} trials x {args.epochs} epochs, concurrency {args.concurrency}, "
          f"{args.rounds} rounds, fixed model; kernel via jupyter_client")

    fe = Frontend()
    runs_dir = tempfile.mkdtemp(prefix="hpo-dash-bench-")
    try:
        fe.execute(SETUP)
        fe.execute(f"bench_run('warmup', 'none', {runs_dir!r}, **{settings!r})")  # tracing, caches
        arms: dict[str, list[float]] = {"notebook": [], "none": []}
        ratios, delays = [], []
        for r in range(args.rounds):
            order = ("notebook", "none") if r % 2 == 0 else ("none", "notebook")
            means = {}
            for arm in order:
                lines = fe.execute(f"bench_run('r{r}-{arm}', {arm!r}, {runs_dir!r}, **{settings!r})")
                result = json.loads(next(line for line in lines if line.startswith("RESULT "))[7:])
                arms[arm] += result["durations"]
                means[arm] = statistics.mean(result["durations"])
                if arm == "notebook":
                    d = freshness(fe.messages, result["epoch_ends"])
                    delays += d
                    n_updates = sum(1 for _, m in fe.messages if m["msg_type"] == "comm_msg")
                    print(f"  round {r}: {n_updates} widget messages, {len(d)}/{len(result['epoch_ends'])} "
                          f"epoch ends seen")
            ratios.append(means["notebook"] / means["none"])
            print(f"  round {r}: trial s dashboard {means['notebook']:.2f} · none {means['none']:.2f} · "
                  f"ratio {ratios[-1]:.3f}")
    finally:
        fe.close()

    print(f"median trial wall time: dashboard {statistics.median(arms['notebook']):.2f} s, "
          f"none {statistics.median(arms['none']):.2f} s")
    if delays:
        delays.sort()
        p90 = delays[int(0.9 * (len(delays) - 1))]
        late = sum(1 for d in delays if d >= 0.5)
        print(f"epoch end -> widget update: median {statistics.median(delays) * 1000:.0f} ms, "
              f"p90 {p90 * 1000:.0f} ms, max {delays[-1] * 1000:.0f} ms, {late}/{len(delays)} at or over "
              f"500 ms (target < 500 ms)")
    ratio = statistics.median(ratios)
    print(f"ratio {ratio:.3f}")
    return ratio


if __name__ == "__main__":
    main()
