"""A Keras callback that prunes poor DFNN trials from their per-epoch VAL loss
(conf/hparams_search/dfnn_optuna.yaml puts it in DFNNClassifier's `callbacks`).

Hand-written rather than optuna-integration's KerasPruningCallback, which reports the monitored
value as it is: Optuna's pruners read intermediate values in the study's direction, so a study
that maximises val_f1 and prunes on val_loss (lower is better) needs the sign flipped, or the
median pruner stops the best trials. It would also add a dependency for fifteen lines.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any

from bench.sweeps.storage import open_storage


def optuna_pruning(monitor: str = "val_loss", mode: str = "min", n_startup_trials: int = 5,
                   n_warmup_steps: int = 5, study_name: str | None = None,
                   trial_number: int | None = None) -> Any:
    """A Keras callback that reports `monitor` after each epoch to the running Optuna trial and
    raises optuna.TrialPruned when a median pruner says the trial is worse than the median of
    earlier trials at that epoch; the sweeper records it PRUNED.

    `study_name` / `trial_number` come from tracking.* (set by the sweeper); outside a sweep, or
    for a multi-objective study (Optuna cannot prune those), the callback does nothing. The value
    is reported with the sign that matches the study's direction (-val_loss for a study that
    maximises val_f1), so the pruner compares like with like.
    """
    import optuna

    from bench.models.keras_nets import _keras

    keras = _keras()
    if study_name is None or trial_number is None:
        return keras.callbacks.Callback()
    pruner = optuna.pruners.MedianPruner(n_startup_trials=n_startup_trials,
                                         n_warmup_steps=n_warmup_steps)
    trial = running_trial(study_name, int(trial_number), pruner)
    if trial is None:
        return keras.callbacks.Callback()
    maximise = trial.study.direction == optuna.study.StudyDirection.MAXIMIZE
    sign = -1.0 if (mode == "min") == maximise else 1.0
    return _pruning_class(keras)(trial, monitor, sign)


def running_trial(study_name: str, trial_number: int, pruner: Any) -> Any | None:
    """The optuna.Trial `trial_number` of the study, opened from a job's process with `pruner`;
    None for a multi-objective study (Optuna cannot prune those).

    Public API only: the storage's own lookups (study id by name, trial id by number) and the
    Trial(study, trial_id) constructor; the storage is the sweep's hydra.sweeper.storage.
    """
    import optuna
    from hydra.core.hydra_config import HydraConfig

    storage = open_storage(HydraConfig.get().sweeper.get("storage"))
    study = optuna.load_study(study_name=study_name, storage=storage, pruner=pruner)
    if len(study.directions) > 1:
        return None
    trial_id = storage.get_trial_id_from_study_id_trial_number(
        storage.get_study_id_from_name(study_name), trial_number)
    return optuna.trial.Trial(study, trial_id)


@functools.cache
def _pruning_class(keras: Any) -> type:
    """The callback class, built once Keras is imported (it subclasses keras.callbacks)."""
    import optuna

    class OptunaPruningCallback(keras.callbacks.Callback):
        def __init__(self, trial: Any, monitor: str, sign: float) -> None:
            super().__init__()
            self.trial, self.monitor, self.sign = trial, monitor, sign

        def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
            value = (logs or {}).get(self.monitor)
            if value is None or not math.isfinite(float(value)):
                return
            self.trial.report(self.sign * float(value), step=epoch)
            if self.trial.should_prune():
                raise optuna.TrialPruned(f"epoch {epoch}: {self.monitor}={float(value):.5g} "
                                         "worse than the median of earlier trials")

    return OptunaPruningCallback
