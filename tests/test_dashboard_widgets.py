"""The dashboard's widgets follow snapshots (no kernel: ipywidgets without a front end)."""

import re
import threading

from hpo_nb.progress import EpochProgress, ProgressHub, TrialFinished, TrialStarted
from hpo_nb.views.dashboard import WIDGET_VIEW, Dashboard
from tests.test_dashboard_viewmodel import search_snapshot


def text(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html)


def test_values_follow_snapshots_and_rows_are_reused():
    stops = []
    dash = Dashboard("digits", slots=2, on_stop=lambda: stops.append(1))
    snap = search_snapshot()
    dash(snap)
    assert (dash.overall_bar.value, dash.overall_bar.max) == (4, 8)
    assert text(dash.overall_label.value).startswith("4/8 trials")
    shown = [b for b in dash.trial_bars if b.box.layout.display != "none"]
    assert [text(b.label.value) for b in shown] == ["Trial 4 · epoch 4/10 · 37 %", "Trial 5 · building and compiling the model"]
    assert abs(shown[0].bar.value - 0.374) < 1e-9
    assert "RunPod unreachable" in dash.notices.value and dash.notices.layout.display == "block"
    assert "0.9100" in dash.tiles[2].value and "Best score (accuracy + health)" in dash.tiles[2].value
    assert dash.picker.value == 3 and "Trial 3" in dash.details.value  # follows the best trial
    assert dash.details_section.selected_index is None  # details stay folded until asked for
    assert dash.details_section.titles[0].startswith("Details · trial 3")
    assert dash.stop_button.layout.display == "flex" and not dash.stop_button.disabled
    first_rows = [b.box for b in dash.trial_bars]

    hub = ProgressHub(total_trials=2, concurrency=2)
    hub.publish(TrialStarted(0, 2))
    hub.publish(EpochProgress(0, 1, 2, 5, 10))
    dash(hub.snapshot())
    assert [b.box for b in dash.trial_bars] == first_rows  # no widget created after display
    assert [b.box.layout.display for b in dash.trial_bars] == ["flex", "none"]
    hub.publish(TrialFinished(0, "complete", accuracy=0.9, score=0.9, duration_s=3.0))
    hub.publish(TrialStarted(1, 2))
    hub.publish(TrialFinished(1, "stopped", duration_s=1.0))
    hub.close()
    final = hub.snapshot()
    dash(final)
    assert dash.overall_bar.value == 1 and dash.overall_bar.max == 2  # a stopped trial does not count
    assert all(b.box.layout.display == "none" for b in dash.trial_bars)
    assert dash.stop_button.disabled and dash.stop_button.layout.display == "none"  # no red button when done
    assert ">stopped</span>" in dash.header.value  # 1 of 2 done, 1 stopped: the search was stopped
    assert dash.gallery.value.count('class="hpo-row"') == 2


def test_stop_button_calls_stop_once_per_click_and_sorting_reorders():
    stops = []
    dash = Dashboard("x", on_stop=lambda: stops.append(threading.current_thread().name))
    dash.stop_button.click()
    assert len(stops) == 1
    dash(search_snapshot())
    dash.sort.value = "trial #"
    assert dash.order.value is False  # a new sort key starts in its natural direction
    assert [label.split(" · ")[0] for label, _ in dash.picker.options] == ["Trial 0", "Trial 1", "Trial 2", "Trial 3"]
    assert dash.gallery.value.index('data-trial="0"') < dash.gallery.value.index('data-trial="3"')
    dash.order.value = True
    assert dash.gallery.value.index('data-trial="3"') < dash.gallery.value.index('data-trial="0"')
    dash.picker.value = 1  # the user's pick sticks across updates, and unfolds the details
    dash(search_snapshot())
    assert dash.picker.value == 1 and "pruned" in dash.details.value
    assert dash.details_section.selected_index == 0


def test_gallery_columns_are_the_searched_parameters():
    dash = Dashboard("x", params=["learning_rate"])
    dash(search_snapshot())
    assert "learning_rate" in list(dash.sort.options)
    assert ">learning_rate</th>" in dash.gallery.value and ">batch_size</th>" not in dash.gallery.value


def test_mimebundle_has_the_widget_and_a_static_summary():
    dash = Dashboard("digits")
    dash(search_snapshot())
    bundle = dash.mimebundle()
    assert bundle[WIDGET_VIEW]["model_id"] == dash.root.model_id
    assert "4/8 trials" in bundle["text/plain"] and 'class="hpo-summary"' in bundle["text/html"]


def test_a_stop_click_and_a_pick_act_on_the_shell_thread_and_their_replay_is_a_no_op(monkeypatch):
    """While ``exp.run()`` blocks the main thread, ipykernel >= 7.4 first asks each comm, on its
    shell-channel thread, where to route a message: the dashboard acts there. The same message then
    reaches the main thread, where acting again would double a click or pick from stale options."""
    import comm

    routed = []
    monkeypatch.setattr(comm.DummyComm, "_reply_subshell_for",  # ipykernel's hook: where a message goes
                        lambda self, data, default: routed.append(data) or default, raising=False)
    stops = []
    dash = Dashboard("x", on_stop=lambda: stops.append(1))
    dash(search_snapshot())

    def arrive(widget, data):
        assert widget.comm._reply_subshell_for(data, "main shell") == "main shell"  # still routed as before
        return lambda: widget.comm.handle_msg({"content": {"data": data}, "buffers": []})  # the main thread, later

    click = {"method": "custom", "content": {"event": "click"}}
    replay = arrive(dash.stop_button, click)
    assert stops == [1]  # at once, not when the cell ends
    replay()
    assert stops == [1]
    dash.stop_button.comm.handle_msg({"content": {"data": click}, "buffers": []})  # one that was not routed early
    assert stops == [1, 1]

    trial_1 = [n for _, n in dash.picker.options].index(1)
    replay = arrive(dash.picker, {"method": "update", "state": {"index": trial_1}, "buffer_paths": []})
    assert dash.picker.value == 1 and "pruned" in dash.details.value
    dash.sort.value = "trial #"  # the options reorder before the main thread gets to the pick
    replay()
    assert dash.picker.value == 1 and len(routed) == 2


def test_the_summary_is_written_once_more_after_the_cell_in_which_it_became_final():
    """A saved notebook shows the display's static summary, so it is refreshed (from the cell's
    thread, after the cell) once the search is over, and then left alone."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    from hpo_nb.views.dashboard_display import CellDisplay

    config = Config()
    config.HistoryManager.enabled = False
    shell = InteractiveShell.instance(config=config)
    try:
        written, final = [], [False]
        display = CellDisplay(lambda: written.append(final[0]) or {"text/plain": str(final[0])}, lambda: final[0])
        shell.user_ns["display"] = display
        assert shell.run_cell("display.show()\nassert display.shown_by_this_cell()", store_history=True).success
        shell.run_cell("pass", store_history=True)
        assert written == [False] and not display.shown_by_this_cell()  # not final: nothing rewritten
        final[0] = True  # the search ended (on its own thread)
        shell.run_cell("pass", store_history=True)
        assert written == [False, True]
        shell.run_cell("pass", store_history=True)
        assert written == [False, True]
    finally:
        InteractiveShell.clear_instance()
