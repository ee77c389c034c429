import inspect
import re

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


def test_the_extension_points_are_public():
    assert {"Executor", "TrialJob", "Snapshot", "Renderer"} <= set(hpo_nb.__all__)
    assert callable(hpo_nb.Executor.submit) and "spec" in hpo_nb.TrialJob.__dataclass_fields__


def test_version_comes_from_the_package_metadata():
    from importlib import metadata

    assert hpo_nb.__version__ == metadata.version("hpo-nb")


def _documented(obj) -> str:
    return inspect.getdoc(obj) or ""


def test_every_public_name_and_experiment_method_is_documented():
    for name in hpo_nb.__all__:
        if name != "__version__":
            assert _documented(getattr(hpo_nb, name)), name
    exp = hpo_nb.Experiment
    for name, member in inspect.getmembers(exp):
        if name.startswith("_"):
            continue
        doc = _documented(member.fget if isinstance(member, property) else member)
        assert doc, name
        if callable(member) and len(inspect.signature(member).parameters) > 1:
            assert "Args:" in doc, name
        if callable(member) and inspect.signature(member).return_annotation not in ("None", None):
            assert "Returns:" in doc, name


def test_every_experiment_argument_is_documented_in_help():
    doc = _documented(hpo_nb.Experiment)
    params = [p for p in inspect.signature(hpo_nb.Experiment).parameters if p != "self"]
    assert len(params) >= 23
    for name in params:
        assert re.search(rf"^\s+{name}: \S", doc, re.M), name
    assert "Raises:" in doc
