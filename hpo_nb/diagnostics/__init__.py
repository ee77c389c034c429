"""Per-trial diagnostics: gradient flow, weight and bias histograms, confusion matrix, per-class
precision and recall, activation maps. ``collect`` measures them inside the one training path,
``record`` bounds and encodes them, ``store`` keeps them with the trial (user attribute + Optuna
artifacts). Drawing lives in ``hpo_nb.analysis.diagnostics`` (data) and ``hpo_nb.views``."""

from .record import ATTR, MAX_INLINE_BYTES, MAX_SUMMARY_BYTES, fit_to_bound

__all__ = ["ATTR", "MAX_INLINE_BYTES", "MAX_SUMMARY_BYTES", "fit_to_bound"]
