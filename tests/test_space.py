import optuna
import pytest

from hpo_nb.errors import ConfigError
from hpo_nb.space import Choice, FloatRange, Fixed, IntRange, build_space, searched, suggest


def test_modality_picks_the_architecture_space():
    assert "conv_blocks" in build_space("image") and "lstm_units" not in build_space("image")
    assert "lstm_units" in build_space("text") and "conv_blocks" not in build_space("text")


def test_overrides_narrow_and_fix():
    space = build_space("image", {"filters": [8, 16], "learning_rate": (1e-3, 1e-2), "conv_blocks": (1, 2),
                                  "activation": "relu"})
    assert space["filters"] == Choice((8, 16))
    assert space["learning_rate"] == FloatRange(1e-3, 1e-2, log=True)  # keeps the default's log scale
    assert space["conv_blocks"] == IntRange(1, 2)
    assert space["activation"] == Fixed("relu")
    assert "activation" not in searched(space)


def test_suggest_gives_every_param_and_only_searches_free_ones():
    space = build_space("image", {"activation": "relu", "filters": [8]})
    trial = optuna.create_study().ask()
    params = suggest(trial, space)
    assert set(params) == set(space)
    assert params["activation"] == "relu" and params["filters"] == 8
    assert "activation" not in trial.params and "conv_blocks" in trial.params


@pytest.mark.parametrize("overrides, words", [
    ({"nope": 1}, "unknown search-space key 'nope'"),
    ({"lstm_units": 8}, "Valid keys"),
    ({"activation": "bogus"}, "not supported"),
    ({"conv_blocks": (3, 1)}, "above high"),
    ({"dropout": (0.0, 2.0)}, "out of range"),
    ({"filters": []}, "empty list"),
])
def test_bad_overrides_are_clear(overrides, words):
    with pytest.raises(ConfigError, match=words):
        build_space("image", overrides)


def test_max_pooling_over_lstm_outputs_builds_without_the_mask_warning():
    import warnings

    import keras

    from hpo_nb.models import build_model

    with warnings.catch_warnings(record=True) as unfiltered:  # what Keras says without hpo-nb's filter
        warnings.simplefilter("always")
        tokens = keras.Input((12,), dtype="int32")
        x = keras.layers.LSTM(4, return_sequences=True)(keras.layers.Embedding(50, 4, mask_zero=True)(tokens))
        keras.layers.GlobalMaxPooling1D(name="max_over_time")(x)
    with warnings.catch_warnings(record=True) as filtered:
        warnings.simplefilter("always")
        build_model({"sequence_pooling": "max", "bidirectional": True}, modality="text", input_shape=(12,),
                    num_classes=2, vocabulary_size=50, seed=0)
        ours = [f for f in warnings.filters if f[1] is not None and "max_over_time" in f[1].pattern]
    assert len(ours) == 1 and any(ours[0][1].match(str(w.message)) for w in unfiltered)
    assert not [w for w in filtered if "max_over_time" in str(w.message)]


def test_parameters_the_model_ignores_are_not_shown_as_its_configuration():
    from hpo_nb.space import active_params

    assert active_params({"dense_layers": 0, "dense_units": 256, "activation": "relu"}) == \
        {"dense_layers": 0, "activation": "relu"}  # the CNN's convolutions still use activation
    assert active_params({"dense_layers": 0, "dense_units": 64, "activation": "relu", "lstm_units": 32}) == \
        {"dense_layers": 0, "lstm_units": 32}  # the LSTM model uses activation only in dense layers
    assert active_params({"dense_layers": 1, "dense_units": 256}) == {"dense_layers": 1, "dense_units": 256}


@pytest.mark.parametrize("modality, overrides", [
    ("image", {"dense_layers": 0}), ("image", {"dense_layers": [0], "dense_units": [32, 64]}),
    ("text", {"dense_layers": 0}),
])
def test_dense_units_are_not_searched_without_dense_layers(modality, overrides):
    from hpo_nb.startup import startup_configs

    space = build_space(modality, overrides)
    assert isinstance(space["dense_units"], Fixed) and "dense_units" not in searched(space)
    trial = optuna.create_study().ask()
    suggest(trial, space)
    assert "dense_units" not in trial.params and "dense_layers" not in trial.params
    assert all("dense_units" not in config for config in startup_configs(modality, space, 5, seed=0))
    # with dense layers possible it stays searched
    assert not isinstance(build_space(modality, {"dense_layers": [0, 1]})["dense_units"], Fixed)
    assert not isinstance(build_space(modality)["dense_units"], Fixed)


def test_the_learning_rate_is_the_peak_of_a_linear_decay_over_the_trial():
    import numpy as np

    from hpo_nb.models import build_model

    params = {"conv_blocks": 1, "filters": 4, "dense_layers": 0, "learning_rate": 0.01, "batch_size": 4}
    model = build_model({**params, "lr_schedule": "linear"}, modality="image", input_shape=(8, 8, 1),
                        num_classes=3, seed=0, total_steps=10)
    schedule = model.optimizer._learning_rate
    assert [round(float(schedule(s)), 6) for s in (0, 5, 10)] == [0.01, 0.005, 0.0]
    x, y = np.random.default_rng(0).random((40, 8, 8, 1), dtype=np.float32), np.arange(40) % 3
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)  # the trial's 10 steps
    assert float(model.optimizer.learning_rate) == pytest.approx(0.0, abs=1e-9)
    cosine = build_model({**params, "lr_schedule": "cosine"}, modality="image", input_shape=(8, 8, 1),
                         num_classes=3, seed=0, total_steps=10).optimizer._learning_rate
    assert float(cosine(5)) == pytest.approx(0.005, rel=1e-4) and float(cosine(10)) == pytest.approx(0.0, abs=1e-9)
    for flat in ({**params, "lr_schedule": "constant"}, params):  # and a rebuilt model without a budget
        rate = build_model(flat, modality="image", input_shape=(8, 8, 1), num_classes=3, seed=0,
                           total_steps=10 if flat is not params else None).optimizer.learning_rate
        assert float(rate) == pytest.approx(0.01)


def test_the_default_space_decays_the_learning_rate_and_refuses_unknown_schedules():
    assert build_space("image")["lr_schedule"] == Fixed("linear") == build_space("text")["lr_schedule"]
    assert build_space("text", {"lr_schedule": ["linear", "constant"]})["lr_schedule"] == Choice(("linear", "constant"))
    with pytest.raises(ConfigError, match="choose from"):
        build_space("image", {"lr_schedule": "step"})


def test_filter_counts_are_sized_so_the_largest_cnn_stays_affordable():
    from hpo_nb.space import MAX_CONV_MACS, conv_macs

    # 3 blocks, 5x5 kernels: what the default space's largest network costs per sample
    assert round(conv_macs((28, 28, 1), 3, 64, 5) / 1e6) == 82 and conv_macs((28, 28, 1), 3, 32, 5) < MAX_CONV_MACS
    assert build_space("image", input_shape=(8, 8, 1))["filters"] == Choice((16, 32, 64))  # digits: all fit
    assert build_space("image", input_shape=(28, 28, 1))["filters"] == Choice((16, 32))
    assert build_space("image", input_shape=(224, 224, 3))["filters"] == Fixed(16)  # the smallest always stays
    assert build_space("image")["filters"] == Choice((16, 32, 64))  # no shape: the plain prior
    # the user's own blocks and kernels size it; the user's own filters are kept as given
    assert build_space("image", {"conv_blocks": (1, 2), "kernel_size": 3},
                       input_shape=(28, 28, 1))["filters"] == Choice((16, 32, 64))
    assert build_space("image", {"filters": [64, 128]}, input_shape=(224, 224, 3))["filters"] == Choice((64, 128))


@pytest.mark.parametrize("pooling", ["average", "max", "last"])
def test_a_text_with_no_token_gets_finite_probabilities_and_others_are_unchanged(pooling, tmp_path):
    import keras
    import numpy as np

    from hpo_nb.models import build_model

    params = {"sequence_pooling": pooling, "bidirectional": True, "lstm_units": 8, "embedding_dim": 8}
    model = build_model(params, modality="text", input_shape=(6,), num_classes=2, vocabulary_size=20, seed=0)
    x = np.array([[0] * 6, [1, 0, 0, 0, 0, 0], [3, 4, 5, 0, 0, 0]], dtype="int32")  # ":-) :-)", one unknown word
    probs = model.predict(x, verbose=0)
    assert np.all(np.isfinite(probs))
    assert np.allclose(probs[0], probs[1])  # no token reads as one unknown word
    path = tmp_path / "m.keras"
    model.save(path)
    assert np.allclose(keras.models.load_model(path, compile=False).predict(x, verbose=0), probs)


def test_a_study_that_searched_dense_units_without_dense_layers_stays_comparable():
    """Recorded before dense_units was fixed there: its trials only differ in a no-op."""
    from hpo_nb.study import incomparable

    now = {k: repr(v) for k, v in build_space("image", {"dense_layers": 0}).items()}
    old = {**now, "dense_units": repr(Choice((64, 128, 256)))}
    comparable = {"fingerprint": "f", "max_epochs": 3, "metric": "accuracy"}
    assert incomparable("s", {**comparable, "search_space": old}, {**comparable, "search_space": now}) == (None, None)
    searched_units = {k: repr(v) for k, v in build_space("image", {"dense_layers": 1}).items()}
    other = {**searched_units, "dense_units": repr(Fixed(64))}
    _, settings = incomparable("s", {**comparable, "search_space": searched_units},
                               {**comparable, "search_space": other})
    assert "dense_units" in str(settings)  # with dense layers, dense_units still counts
