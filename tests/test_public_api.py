import hpo_nb


def test_all_lists_exactly_the_public_names():
    public = {n for n in dir(hpo_nb) if not n.startswith("_")} - {"annotations"}
    modules = {n for n in public if type(getattr(hpo_nb, n)).__name__ == "module"}
    assert set(hpo_nb.__all__) - {"__version__"} == public - (modules - {"datasets"})
    for name in hpo_nb.__all__:
        assert hasattr(hpo_nb, name), name


def test_contract_names_exist():
    exp_cls = hpo_nb.Experiment
    for attr in ("run", "start", "wait", "stop", "results", "best", "best_model", "dashboard", "importance",
                 "importance_heatmap", "plot_history", "architecture_3d", "compare_architectures"):
        assert hasattr(exp_cls, attr), attr
    assert "digits" in hpo_nb.datasets.names()
