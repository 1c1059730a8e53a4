"""Optuna hyperparameter sweeps through Hydra multirun, tracked in MLflow (docs/sweeps.md).

    python -m bench -m hparams_search=xgboost_optuna [dataset=...] [hydra.sweeper.n_trials=...]

Every preset selects `hydra/sweeper: bench_optuna` (conf/hydra/sweeper/bench_optuna.yaml), which
names the two Hydra plugins here. The rooms, in the order a sweep meets them:

- `sweeper`: `OptunaSweeper`, the official hydra-optuna-sweeper 1.4.0rc3 (config schema,
  samplers, search-space syntax) with bench's own ask/tell loop: it passes each job its study
  and trial number (`tracking.study_name`, `tracking.trial_number`), records pruned trials as
  PRUNED and NaN objectives as FAIL, and stops on too many failures;
- `storage`: an Optuna storage from one string (a URL is an RDB storage, anything else a
  JournalStorage file that several processes on one host may write at once; a torn last
  record is dropped with a warning);
- `resume`: a resumed study must optimise the same objectives on the same base configuration
  (`base_config_id`), and its sampler is re-seeded; RUNNING trials of dead sweep processes are
  ended FAIL, and with `resume=true` re-run until n_trials are finished (docs/resume.md);
- `reports`: the study's trials table, best trial, importances and plots in
  `<sweep dir>/optuna/`;
- `callback`: `MlflowSweepCallback`, one MLflow parent run per sweep (through bench.tracking),
  each trial's run tagged and nested under it, never left RUNNING short of a SIGKILL;
- `pruning`: a Keras callback that reports the per-epoch VAL loss to the trial and prunes it.

What a sweep may optimise (VAL metrics and timings, never TEST) lives in bench/objective.py,
which a plain run imports without loading this package or Optuna. Only the sweeper touches
Optuna's storage while a sweep runs (plus the pruning callback, which writes intermediate
values from the jobs); jobs return their objective through Hydra.
"""
