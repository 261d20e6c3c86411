"""Calibration of the model on a recorded market (``MODEL.md`` §10.3), every estimate with its standard error.

* :mod:`agents.calibration.estimators`: Newey–West long-run covariances, the delta method and the sandwich;
* :mod:`agents.calibration.calibrate`: :func:`~agents.calibration.calibrate.calibrate`, from a tape on the step grid
  (:func:`mm_env.data.steps.to_steps`) to a :class:`~agents.calibration.calibrate.Calibration` and the model's
  keywords.
"""

from agents.calibration.calibrate import Calibration, calibrate
from agents.calibration.estimators import Estimate

__all__ = ["Calibration", "Estimate", "calibrate"]
