"""The 3D architecture view as data: layout of real CNN and LSTM metadata (positions, sizes,
colours), its JSON / Optuna-storage round trip, the pythreejs and Plotly scenes built from it,
and the Experiment methods on a real (tiny) search on digits."""

from __future__ import annotations

import json
import math

import optuna
import pytest

from hpo_nb import Experiment, models
from hpo_nb.analysis.layout import (BAR, COLORS, GAP, SHAPE_PRESERVING, THIN, Scene, block_size, color_of, extent,
                                    layout)
from hpo_nb.errors import ConfigError
from hpo_nb.records import TrialResult
from hpo_nb.views import arch3d

CNN_PARAMS = {"conv_blocks": 2, "filters": 16, "batch_norm": True, "dropout": 0.2, "dense_layers": 1,
              "dense_units": 32, "activation": "relu", "pooling": "max"}
LSTM_PARAMS = {"embedding_dim": 64, "lstm_layers": 2, "lstm_units": 64, "bidirectional": True, "dense_layers": 1,
               "dense_units": 64, "dropout": 0.0}


@pytest.fixture(scope="module")
def cnn() -> dict:
    model = models.build_model(CNN_PARAMS, modality="image", input_shape=(8, 8, 1), num_classes=10)
    return models.architecture(model, CNN_PARAMS)


@pytest.fixture(scope="module")
def lstm() -> dict:
    model = models.build_model(LSTM_PARAMS, modality="text", input_shape=(50,), num_classes=2,
                               vocabulary_size=1000)
    return models.architecture(model, LSTM_PARAMS)


def _check_flow(scene: Scene) -> None:
    """Solids follow the data flow along +x without overlapping; one connector bridges each gap."""
    blocks = scene.blocks
    for a, b in zip(blocks, blocks[1:]):
        a_end, b_start = a.center[0] + a.size[0] / 2, b.center[0] - b.size[0] / 2
        assert b_start - a_end == pytest.approx(GAP)
    assert len(scene.connectors) == len(blocks) - 1
    for (start, end), a, b in zip(scene.connectors, blocks, blocks[1:]):
        assert start[0] == pytest.approx(a.center[0] + a.size[0] / 2)
        assert end[0] == pytest.approx(b.center[0] - b.size[0] / 2)
    assert blocks[0].center[0] == pytest.approx(-blocks[-1].center[0])  # centred on the origin


def test_cnn_layout_sizes_follow_output_shapes_on_a_log_scale(cnn):
    scene = layout(cnn)
    assert [b.name for b in scene.blocks] == [l["name"] for l in cnn["layers"]]
    _check_flow(scene)
    conv1, pool1, flatten, output = (scene.block(n) for n in ("conv_1", "conv_1_pool", "flatten", "output"))
    assert conv1.shape == (8, 8, 16)
    assert conv1.size == (extent(16), extent(8), extent(8))  # channels along the flow, H x W across
    assert pool1.size[1] < conv1.size[1] and pool1.size[0] == conv1.size[0]  # pooling halves H and W
    assert flatten.size == (BAR, extent(128), BAR) and output.size == (BAR, extent(10), BAR)
    # 128 vs 10 units: a 12.8x ratio drawn as well under 2x, both visible
    assert 1.0 < flatten.size[1] / output.size[1] < 2.1
    for b in scene.blocks:
        if b.type in SHAPE_PRESERVING:  # activation, dropout, batch norm: thin plates of their shape
            assert b.size[0] == THIN
    relu = scene.block("conv_1_relu")
    assert relu.size[1:] == conv1.size[1:]


def test_cnn_layout_colours_each_layer_type_with_a_legend(cnn):
    scene = layout(cnn)
    assert scene.block("conv_1").color == scene.block("conv_2").color == COLORS["Conv2D"]
    assert scene.block("output").color == COLORS["Dense"]
    assert list(scene.legend) == ["InputLayer", "Conv2D", "BatchNormalization", "Activation", "MaxPooling2D",
                                  "Flatten", "Dropout", "Dense"]
    assert len(set(scene.legend.values())) == len(scene.legend)
    assert all(b.color == scene.legend[b.type] for b in scene.blocks)
    assert color_of("MyCustomLayer") == color_of("MyCustomLayer") != ""


def test_labels_and_details_name_each_layer(cnn):
    scene = layout(cnn)
    conv1 = scene.block("conv_1")
    assert conv1.label == "conv_1 8×8×16"
    assert scene.block("image").label_at[1] > 0  # main layers labelled above where there is room
    assert scene.block("conv_1_relu").label_at[1] < 0  # thin plates below
    assert all(abs(b.label_at[1]) > b.size[1] / 2 for b in scene.blocks)  # never on the solid
    d = conv1.details()
    assert d["type"] == "Conv2D" and d["parameters"] == 160 and d["output shape"] == "8×8×16"
    assert scene.block("output").details()["activation"] == "softmax"
    assert "kernel_size: 3×3" in conv1.details_text()
    assert scene.total_params == cnn["total_params"]


def test_lstm_layout_draws_sequences_and_vectors(lstm):
    scene = layout(lstm)
    _check_flow(scene)
    emb, bi1, bi2 = scene.block("embedding"), scene.block("bilstm_1"), scene.block("bilstm_2")
    assert emb.size == (BAR, extent(64), extent(50))  # features up, time steps in depth
    assert bi1.shape == (50, 128) and bi1.size == (BAR, extent(128), extent(50))
    assert bi2.shape == (128,) and bi2.size == (BAR, extent(128), BAR)  # last LSTM returns a vector
    assert bi1.color == COLORS["Bidirectional"] and emb.color == COLORS["Embedding"]
    assert bi1.details()["activation"] == "tanh" and bi1.details()["units"] == 64


def test_block_size_handles_unknown_and_higher_rank_shapes():
    assert block_size("Lambda", []) == (BAR, BAR, BAR)
    assert block_size("Conv1D", [None, 32]) == (BAR, extent(32), extent(1))
    assert block_size("Conv3D", [4, 4, 4, 8]) == (extent(8), extent(16), extent(4))


@pytest.mark.parametrize("which", ["cnn", "lstm"])
def test_metadata_round_trips_through_json_and_optuna_storage(which, request, tmp_path):
    arch = request.getfixturevalue(which)
    again = json.loads(json.dumps(arch))
    assert layout(again) == layout(arch)
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'rt.db'}")
    study = optuna.create_study(storage=storage, study_name="rt", direction="maximize")
    trial = study.ask()
    trial.set_user_attr("architecture", arch)
    study.tell(trial, 0.5)
    stored = optuna.load_study(study_name="rt", storage=f"sqlite:///{tmp_path / 'rt.db'}").trials[0]
    assert layout(TrialResult.from_trial(stored).architecture) == layout(arch)


@pytest.mark.parametrize("which", ["cnn", "lstm"])
def test_labels_sit_near_their_solids_and_never_overlap(which, request):
    from hpo_nb.analysis.layout import LABEL_HEIGHT, LABEL_LIFT, LABEL_STEP, label_width

    scene = layout(request.getfixturevalue(which))
    rects = []
    for b in scene.blocks:
        x, y, z = b.label_at
        assert x == b.center[0] and z == pytest.approx(b.size[2] / 2 + 0.05)  # centred on, just in front of it
        gap = abs(y) - b.size[1] / 2  # from the solid's top (bottom for thin plates)
        assert LABEL_LIFT - 1e-9 <= gap <= LABEL_LIFT + 3 * LABEL_STEP, (b.name, gap)
        w = label_width(b.label)
        rects.append((x - w / 2, x + w / 2, y - LABEL_HEIGHT / 2, y + LABEL_HEIGHT / 2))
    for i, a in enumerate(rects):
        for j, c in enumerate(rects[:i]):
            overlap = a[0] < c[1] and a[1] > c[0] and a[2] < c[3] and a[3] > c[2]
            assert not overlap, (scene.blocks[i].label, scene.blocks[j].label)


def test_missing_metadata_is_a_config_error():
    with pytest.raises(ConfigError, match="no architecture metadata"):
        layout({})
    failed = TrialResult(number=4, state="failed", params={}, accuracy=None, score=None)
    with pytest.raises(ConfigError, match="trial 4 \\(failed\\)"):
        arch3d.show_trial(failed, backend="plotly")


def test_pythreejs_view_has_a_solid_per_layer_orbit_controls_and_picking(cnn):
    import pythreejs as p3

    scene = layout(cnn)
    view = arch3d.view_3d(scene, title="trial 0")
    assert isinstance(view.renderer, p3.Renderer)
    orbit = next(c for c in view.renderer.controls if isinstance(c, p3.OrbitControls))
    assert orbit is view.orbit and orbit.rotateSpeed < 0.5  # a small drag turns a little
    assert -math.pi / 2 < orbit.minAzimuthAngle and orbit.maxAzimuthAngle < math.pi / 2  # stays in front
    assert 0 < orbit.minDistance < orbit.maxDistance < float("inf")
    light = view.renderer.camera.children[0]  # an unset shadow makes the front end log "t.on is not a function"
    assert isinstance(light, p3.DirectionalLight) and isinstance(light.shadow, p3.DirectionalLightShadow)
    sent = []
    orbit.send = lambda content, buffers=None: sent.append(content)  # what the button asks the front end
    view.reset_button.click()
    assert sent == [{"type": "exec_three_obj_method", "method_name": "reset", "args": []}]
    assert view.picker in view.renderer.controls and view.picker.event == "click"
    assert set(view.meshes) == {b.name for b in scene.blocks}
    mesh = view.meshes["conv_2"]
    assert tuple(mesh.position) == scene.block("conv_2").center
    assert mesh.material.color == COLORS["Conv2D"]
    assert (mesh.geometry.width, mesh.geometry.height, mesh.geometry.depth) == scene.block("conv_2").size
    sprites = [o for o in view.renderer.scene.children if isinstance(o, p3.Sprite)]
    assert sorted(s.material.map.string for s in sprites) == sorted(b.label for b in scene.blocks)
    assert "click a layer" in view.details.value
    view.picker.object = mesh  # what the front end sends when the layer is clicked
    assert "conv_2" in view.details.value and "4,640" in view.details.value and "Conv2D" in view.details.value
    assert all(t in view.children[-1].value for t in scene.legend)


def test_plotly_fallback_draws_the_same_scene(lstm):
    scene = layout(lstm)
    fig = arch3d.figure_3d(scene, title="lstm")
    meshes = [t for t in fig.data if t.type == "mesh3d"]
    assert len(meshes) == len(scene.blocks)
    assert [m.color for m in meshes] == [b.color for b in scene.blocks]
    assert sorted(m.name for m in meshes if m.showlegend) == sorted(scene.legend)
    assert "parameters: 66,048" in meshes[2].hovertext and "Bidirectional" in meshes[2].hovertext
    labels = next(t for t in fig.data if t.type == "scatter3d" and t.mode == "text")
    assert list(labels.text) == [b.label for b in scene.blocks]


def test_backend_auto_is_static_outside_a_kernel_or_when_asked(monkeypatch):
    assert arch3d.choose_backend("auto") == "plotly"  # pytest: no Jupyter kernel
    assert arch3d.choose_backend("pythreejs") == "pythreejs"
    monkeypatch.setenv(arch3d.STATIC_ENV, "1")
    assert arch3d.choose_backend("auto") == "plotly"
    with pytest.raises(ConfigError, match="backend must be one of"):
        arch3d.choose_backend("vtk")


@pytest.fixture(scope="module")
def searched(tmp_path_factory) -> Experiment:
    """A real search: two tiny CNNs trained for one epoch on digits."""
    runs = tmp_path_factory.mktemp("runs")
    exp = Experiment("digits", n_trials=2, max_epochs=1, runs_dir=runs, name="arch3d", progress="none",
                     pruning=False, save_models=False,
                     search_space={"conv_blocks": [1, 2], "filters": 8, "dense_layers": 0, "batch_size": 64,
                                   "batch_norm": False, "learning_rate": 5e-3})
    exp.run()
    return exp


def test_experiment_views_come_from_stored_metadata_without_rebuilding(searched, monkeypatch):
    # A fresh Experiment on the same storage stands for a restarted kernel.
    again = Experiment("digits", n_trials=2, max_epochs=1, runs_dir=searched.run_dir.parent, name="arch3d",
                       progress="none", search_space={"conv_blocks": [1, 2], "filters": 8, "dense_layers": 0,
                                                      "batch_size": 64, "batch_norm": False, "learning_rate": 5e-3})
    monkeypatch.setattr(models, "build_model", lambda *a, **k: pytest.fail("the view rebuilt a model"))
    best = again.best
    fig = again.architecture_3d(backend="plotly")
    assert f"trial {best.number}" in fig.layout.title.text
    assert len([t for t in fig.data if t.type == "mesh3d"]) == len(best.architecture["layers"])
    view = again.architecture_3d(backend="pythreejs")
    assert set(view.meshes) == {l["name"] for l in best.architecture["layers"]}
    pair = again.compare_architectures(0, 1, backend="plotly")
    assert pair.layout.scene.xaxis.range == pair.layout.scene2.xaxis.range  # one scale for both
    assert {t.scene for t in pair.data} == {"scene", "scene2"}
    widgets = again.compare_architectures(0, backend="pythreejs")
    assert len(widgets.children[0].children) == 2


def test_importance_on_two_trials_says_too_few(searched):
    df = searched.importance()
    assert df.isna().all().all()
    assert df.attrs["notes"]["accuracy"] == "too few trials: 2 complete, needs 10"
    fig = searched.importance_heatmap()
    assert {a.text for a in fig.layout.annotations} == {"–"}


@pytest.mark.parametrize("which,size", [("cnn", (760, 420)), ("lstm", (760, 420)), ("cnn", (480, 380))])
def test_the_camera_sees_every_solid_and_label(which, size, request):
    """Project each solid's corners through the pythreejs camera (looking at the origin)."""
    import numpy as np

    scene = layout(request.getfixturevalue(which))
    cam = np.array(arch3d.camera_position(scene.reach, size[0] / size[1]))
    forward = -cam / np.linalg.norm(cam)
    right = np.cross(forward, [0, 1, 0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    t = np.tan(np.radians(arch3d.FOV / 2))
    points = [b.label_at for b in scene.blocks]
    for b in scene.blocks:
        points += [tuple(c + s * d / 2 for c, s, d in zip(b.center, signs, b.size))
                   for signs in np.array(np.meshgrid([-1, 1], [-1, 1], [-1, 1])).T.reshape(-1, 3)]
    for p in points:
        v = np.array(p) - cam
        depth = v @ forward
        x, y = (v @ right) / (depth * t * size[0] / size[1]), (v @ up) / (depth * t)
        assert abs(x) < 0.95 and abs(y) < 0.95, (p, x, y)
