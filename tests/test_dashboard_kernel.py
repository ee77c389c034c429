"""The dashboard in a real kernel: a notebook starts a tiny search under nbclient, runs another cell
meanwhile, then waits; the widget messages it sent and the executed notebook show live per-trial
progress and the final result (also in the static fallback beside the widget view)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

N_TRIALS = 3
SEARCH = f"""
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
from hpo_nb import Experiment
exp = Experiment(dataset="digits", n_trials={N_TRIALS}, max_epochs=2, concurrency=2, name="kernel-test",
                 pruning=False, save_models=False,
                 search_space={{"conv_blocks": 1, "filters": 8, "dense_layers": 0, "batch_size": 2}})
exp.start();
print("started")
"""


class RecordingClient(NotebookClient):
    """nbclient that also keeps every widget message the kernel sent (as a front end would see them)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.comm_messages: list[dict[str, Any]] = []

    def handle_comm_msg(self, outs: list, msg: dict[str, Any], cell_index: int) -> None:
        self.comm_messages.append(msg)
        super().handle_comm_msg(outs, msg, cell_index)


def _models_with_class(messages: list[dict[str, Any]], css: str) -> set[str]:
    """Widgets given this CSS class (add_class sends it in an update right after the comm opens)."""
    return {m["content"]["comm_id"] for m in messages
            if css in m["content"]["data"].get("state", {}).get("_dom_classes", [])}


def _updates(messages: list[dict[str, Any]], ids: set[str], key: str) -> list[Any]:
    """Values of ``key`` the kernel sent for these models, in order (their opening state included)."""
    return [m["content"]["data"]["state"][key] for m in messages
            if m["content"]["comm_id"] in ids and key in m["content"]["data"].get("state", {})]


@pytest.mark.slow
def test_notebook_search_updates_trial_bars_live_and_ends_at_n_trials(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(SEARCH),
                nbformat.v4.new_code_cell("print('meanwhile, running:', exp.running)"),
                nbformat.v4.new_code_cell("exp.wait()\nexp.results.shape[0]")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    client = RecordingClient(nb, timeout=600, kernel_name="python3", store_widget_state=True,
                             resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    nbformat.write(nb, str(tmp_path / "executed.ipynb"))
    msgs = client.comm_messages

    # Per-trial bars moved during training: values strictly inside (0, 1), several distinct ones,
    # and labels that show a position inside an epoch ("epoch 1/2 · 43 %").
    bars = _models_with_class(msgs, "hpo-trial-bar")
    assert len(bars) == 2  # one reusable row per concurrent trial
    values = _updates(msgs, bars, "value")
    inside = {v for v in values if 0 < v < 1}
    assert len(inside) >= 3, values
    labels = _updates(msgs, _models_with_class(msgs, "hpo-trial-label"), "value")
    within_epoch = [label for label in labels
                    if (m := re.search(r"epoch \d+/2 · (\d+) %", label)) and 0 < int(m.group(1)) < 100]
    assert within_epoch, labels
    assert {int(n) for n in re.findall(r"Trial (\d+) ·", " ".join(labels))} == set(range(N_TRIALS))

    # The saved widget state ends with the overall bar at n_trials and the trial rows hidden.
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    overall = [s["state"] for s in state.values() if "hpo-overall-bar" in s["state"].get("_dom_classes", [])]
    assert len(overall) == 1 and overall[0]["value"] == overall[0]["max"] == N_TRIALS
    assert sum(1 for s in state.values() if "hpo-row" in str(s["state"].get("value", ""))) >= 1

    # The static fallback beside the widget view was refreshed with the final result.
    out = next(o for o in nb.cells[0].outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {}))
    assert f"{N_TRIALS}/{N_TRIALS} trials" in out["data"]["text/plain"] and "done" in out["data"]["text/plain"]
    assert out["data"]["text/html"].count('class="hpo-row"') == N_TRIALS
    assert nb.cells[1].outputs[0]["text"].strip() == "meanwhile, running: True"  # start() returned at once
    assert nb.cells[2].outputs[0]["data"]["text/plain"] == str(N_TRIALS)
