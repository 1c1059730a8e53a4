"""Keras networks behind the scikit-learn API; Keras is imported only when one is fitted.

`DFNNClassifier` is the seed thesis network (Dense-BatchNorm-Dropout blocks, sigmoid output,
balanced class weights, early stopping on VAL loss). `AutoencoderFeatures` is the dense
autoencoder selector whose bottleneck activations are the features. Both accept
`validation_data` in `fit`; the experiment passes VAL there, so early stopping watches VAL and
never TEST. In a logged model (bench.models.decision) each fitted Keras model is stored in
Keras' own .keras format and put back into its wrapper at load.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.model_selection import train_test_split
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.validation import check_is_fitted

from bench.errors import ConfigError

_PREDICT_CHUNK = 65_536


def _keras() -> Any:
    """Import Keras lazily (about 5 s): only runs that choose a Keras model pay for it.
    TensorFlow's start-up lines are kept off the console (bench.console.quiet_tensorflow)."""
    from bench.console import quiet_tensorflow

    with quiet_tensorflow():
        import keras
        import tensorflow as tf

        tf.config.list_physical_devices()  # the CUDA probe (and its noise) happens here
    return keras


def _progress(keras: Any, name: str, epochs: int, prefix: str) -> Any:
    """A Keras callback that shows each epoch (bench.console.EpochProgress: a bar on a
    terminal, a log line otherwise) and streams its logs to the active MLflow run as
    `<prefix>_<metric>` at step = epoch, so curves grow while the model trains."""
    from bench import tracking
    from bench.console import EpochProgress

    class Progress(keras.callbacks.Callback):
        def on_train_begin(self, logs: Any = None) -> None:
            self.progress = EpochProgress(name, epochs)

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            logs = {k: float(v) for k, v in (logs or {}).items()}
            self.progress.epoch_end(epoch, logs)
            tracking.log_epoch(prefix, logs, epoch)

        def on_train_end(self, logs: Any = None) -> None:
            self.progress.close()

    return Progress()


def _as_float32(X: Any) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(X, dtype=np.float32))


def _predict(model: Any, X: np.ndarray) -> np.ndarray:
    """Run `model` in inference mode over X in chunks; returns a numpy array."""
    outputs = [np.asarray(model(X[i : i + _PREDICT_CHUNK], training=False))
               for i in range(0, len(X), _PREDICT_CHUNK)]
    return np.concatenate(outputs) if outputs else np.empty((0,))


def _early_stopping(keras: Any, patience: int, min_delta: float = 0.0) -> Any:
    return keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience,
                                         min_delta=min_delta, restore_best_weights=True)


class DFNNClassifier(ClassifierMixin, BaseEstimator):
    """Deep feed-forward binary classifier; `predict_proba(X)[:, 1]` is P(attack).

    Architecture: for each width in `hidden_units`, Dense(activation) -> BatchNorm (if
    `batch_norm`) -> Dropout (if `dropout` > 0); then Dense(1, sigmoid). Adam, binary
    cross-entropy, class weights from sklearn's `compute_class_weight("balanced")` unless
    `class_weight=None`. Early stopping on `val_loss` with `patience` (an epoch counts as better
    when it lowers the best VAL loss by more than `min_delta`), best weights restored; without
    `validation_data`, a stratified `validation_fraction` of the fit data is held out.
    `callbacks` are extra Keras callbacks (e.g. an Optuna pruning callback).

    Speed (scripts/bench_dfnn.py, docs/keras_gpu.md): an epoch on CPU is compute-bound from
    batch 512 up, so the defaults train few epochs (batch 1024 with the learning rate scaled
    to 2e-3, at most 10 epochs, patience 2) and run `steps_per_execution` batches per call
    into TensorFlow. XLA is left to Keras' `jit_compile="auto"`: on with a GPU, off on CPU
    (where it made an epoch about 10x slower here).
    """

    def __init__(self, hidden_units: Sequence[int] = (128, 64), batch_norm: bool = True,
                 dropout: float = 0.3, activation: str = "relu", learning_rate: float = 2e-3,
                 batch_size: int = 1024, epochs: int = 10, patience: int = 2,
                 min_delta: float = 0.0, steps_per_execution: int = 8,
                 class_weight: str | None = "balanced", validation_fraction: float = 0.1,
                 random_state: int = 0, verbose: int = 0, callbacks: Sequence[Any] | None = None):
        self.hidden_units = hidden_units
        self.batch_norm = batch_norm
        self.dropout = dropout
        self.activation = activation
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.epochs = epochs
        self.patience = patience
        self.min_delta = min_delta
        self.steps_per_execution = steps_per_execution
        self.class_weight = class_weight
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks

    def _build(self, keras: Any, n_features: int) -> Any:
        layers = keras.layers
        model = keras.Sequential([keras.Input(shape=(n_features,))])
        for width in self.hidden_units:
            model.add(layers.Dense(int(width), activation=self.activation))
            if self.batch_norm:
                model.add(layers.BatchNormalization())
            if self.dropout > 0:
                model.add(layers.Dropout(self.dropout))
        model.add(layers.Dense(1, activation="sigmoid"))
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=self.learning_rate),
                      loss="binary_crossentropy",
                      steps_per_execution=int(self.steps_per_execution))
        return model

    def fit(self, X: Any, y: Any, validation_data: tuple[Any, Any] | None = None
            ) -> DFNNClassifier:
        keras = _keras()
        X, y = _as_float32(X), np.asarray(y).astype(np.int64)
        self.classes_ = np.unique(y)
        if not np.array_equal(self.classes_, [0, 1]):
            raise ValueError(f"DFNNClassifier needs labels 0 and 1 in TRAIN, got {self.classes_}")
        self.n_features_in_ = X.shape[1]
        if validation_data is None:
            X, X_val, y, y_val = train_test_split(
                X, y, test_size=self.validation_fraction, stratify=y,
                random_state=self.random_state)
        else:
            X_val, y_val = _as_float32(validation_data[0]), np.asarray(validation_data[1])
        weights = None
        if self.class_weight == "balanced":
            values = compute_class_weight("balanced", classes=self.classes_, y=y)
            weights = {int(c): float(w) for c, w in zip(self.classes_, values, strict=True)}
        keras.utils.set_random_seed(self.random_state)
        model = self._build(keras, X.shape[1])
        history = model.fit(
            X, y, validation_data=(X_val, y_val), epochs=self.epochs,
            batch_size=self.batch_size, class_weight=weights, verbose=self.verbose,
            callbacks=[_early_stopping(keras, self.patience, self.min_delta),
                       _progress(keras, "dfnn", self.epochs, "model"),
                       *(self.callbacks or [])],
        )
        self.model_ = model
        self.history_ = {k: [float(v) for v in values] for k, values in history.history.items()}
        self.n_epochs_ = len(self.history_.get("loss", []))
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """(n_rows, 2): columns P(normal), P(attack)."""
        check_is_fitted(self, "model_")
        p = _predict(self.model_, _as_float32(X)).reshape(-1)
        return np.column_stack([1.0 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[(self.predict_proba(X)[:, 1] >= 0.5).astype(int)]

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["callbacks"] = None  # callbacks (pruners, loggers) are not part of the model
        return state


def layer_widths(units: int, depth: int, shrink: float = 0.5) -> list[int]:
    """Widths of a funnel: `units`, then each layer `shrink` times the one before (>= 1)."""
    if int(depth) < 1 or int(units) < 1:
        raise ConfigError(f"units and depth must be >= 1, got units={units}, depth={depth}")
    return [max(1, round(int(units) * shrink**i)) for i in range(int(depth))]


def dfnn(units: int = 128, depth: int = 2, shrink: float = 0.5,
         hidden_units: Sequence[int] | None = None, class_weight: str | None = "balanced",
         **params: Any) -> DFNNClassifier:
    """DFNNClassifier whose hidden layers are `layer_widths(units, depth, shrink)`, so that a
    sweep searches width and depth as two numbers (128, 2 -> the thesis 128-64); used by
    conf/hparams_search/dfnn_optuna.yaml.

    `class_weight`: "balanced", or "none"/None (a Hydra choice cannot hold null).
    """
    if hidden_units is not None:
        raise ConfigError("model.hidden_units is set by units/depth in this preset; leave it null")
    weight = None if class_weight in (None, "none", "None") else class_weight
    return DFNNClassifier(hidden_units=layer_widths(units, depth, shrink), class_weight=weight,
                          **params)


class DenseAutoencoder(BaseEstimator):
    """Dense autoencoder: encoder `encoder_units` (last = bottleneck), mirrored decoder,
    linear output, mean-squared-error loss, Adam, early stopping on VAL reconstruction loss.
    """

    def __init__(self, encoder_units: Sequence[int] = (100, 50, 25), activation: str = "relu",
                 learning_rate: float = 1e-3, batch_size: int = 256, epochs: int = 30,
                 patience: int = 5, validation_fraction: float = 0.1, random_state: int = 0,
                 verbose: int = 0):
        self.encoder_units = encoder_units
        self.activation = activation
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.epochs = epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.verbose = verbose

    _stage = "model"  # its per-epoch metrics in MLflow: model_loss, model_val_loss

    def _fit_autoencoder(self, X: Any, X_val: Any | None) -> None:
        keras = _keras()
        X = _as_float32(X)
        if X_val is None:
            X, X_val = train_test_split(X, test_size=self.validation_fraction,
                                        random_state=self.random_state)
        X_val = _as_float32(X_val)
        self.n_features_in_ = X.shape[1]
        keras.utils.set_random_seed(self.random_state)
        layers = keras.layers
        inputs = keras.Input(shape=(X.shape[1],))
        hidden = inputs
        for width in self.encoder_units:
            hidden = layers.Dense(int(width), activation=self.activation)(hidden)
        code = hidden
        for width in reversed(list(self.encoder_units)[:-1]):
            hidden = layers.Dense(int(width), activation=self.activation)(hidden)
        outputs = layers.Dense(X.shape[1], activation="linear")(hidden)
        autoencoder = keras.Model(inputs, outputs)
        autoencoder.compile(optimizer=keras.optimizers.Adam(learning_rate=self.learning_rate),
                            loss="mse")
        history = autoencoder.fit(
            X, X, validation_data=(X_val, X_val), epochs=self.epochs,
            batch_size=self.batch_size, verbose=self.verbose,
            callbacks=[_early_stopping(keras, self.patience),
                       _progress(keras, "autoencoder", self.epochs, self._stage)],
        )
        self.autoencoder_ = autoencoder
        self.encoder_ = keras.Model(inputs, code)
        self.history_ = {k: [float(v) for v in values] for k, values in history.history.items()}
        self.n_epochs_ = len(self.history_.get("loss", []))

    def reconstruction_error(self, X: Any) -> np.ndarray:
        """(n_rows,) mean squared reconstruction error per row; higher = more unusual."""
        check_is_fitted(self, "autoencoder_")
        X = _as_float32(X)
        return np.mean((_predict(self.autoencoder_, X) - X) ** 2, axis=1)


class AutoencoderFeatures(TransformerMixin, DenseAutoencoder):
    """Selector: (n_rows, n_features) -> (n_rows, encoder_units[-1]) bottleneck activations.

    `validation_data` is the preprocessed VAL matrix (or an (X, y) pair; y is ignored).
    """

    _stage = "select"

    def fit(self, X: Any, y: Any = None, validation_data: Any = None) -> AutoencoderFeatures:
        if isinstance(validation_data, tuple):
            validation_data = validation_data[0]
        self._fit_autoencoder(X, validation_data)
        return self

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "encoder_")
        return _predict(self.encoder_, _as_float32(X))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray([f"ae{i + 1}" for i in range(int(self.encoder_units[-1]))],
                          dtype=object)
