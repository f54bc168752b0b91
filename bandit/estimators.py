"""How would another policy have done? Estimates from a Test's logged decisions, as pure numpy.

Every decision of a Test is logged with the variant shown, its propensity (the probability the
policy gave that variant, in that context) and, later, its reward. From that log alone we can
estimate the mean reward another policy (uniform random, one variant for everyone, a greedy
rule) would have earned, without ever running it: a decision the other policy would have made
more often than the logging policy did counts more, one it would have avoided counts less.

Three off-policy estimators, each with a 95% interval:
- IPS (inverse propensity scoring): unbiased when the propensities are right, but noisy when
  the two policies disagree and the propensities are small.
- SNIPS (self-normalised IPS): divides by the sum of the weights instead of by the number of
  decisions. Slightly biased for small logs, usually much less noisy.
- Doubly robust: a reward model's prediction, corrected by IPS on the model's errors. Still
  unbiased when the model is wrong, and the narrower the better the model is.

Also the interval of a plain mean and of a difference of two means, for comparing variants.

Like the policy, this module knows nothing of Django or Redis. Every number it returns is a
finite Python float, because results are served as JSON, which holds neither NaN nor infinity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# The 97.5% quantiles of Student's t with 1 to 30 degrees of freedom. An interval from few
# values must be wider than the normal one: with 5 values, ±1.96 standard errors cover the
# true mean only 88% of the time instead of 95%.
_T_975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip
_Z_975 = 1.959963984540054  # the normal one, which t approaches as the values grow


@dataclass(frozen=True)
class Estimate:
    """An estimated mean reward and its 95% interval."""

    value: float  # the estimated mean reward
    low: float  # the 95% interval: [low, high]
    high: float
    decisions: int  # how many logged decisions (or values) it used

    def as_dict(self) -> dict[str, float | int]:
        """The estimate as JSON can hold it."""
        return {
            "value": self.value,
            "low": self.low,
            "high": self.high,
            "decisions": self.decisions,
        }


def mean_interval(rewards: np.ndarray) -> Estimate | None:
    """The mean reward with its 95% interval; None with fewer than 2 rewards, whose spread,
    and so whose interval, is unknown."""
    values = _values("rewards", rewards)
    if len(values) < 2:
        return None
    return _mean_of(values)


def difference(treated: np.ndarray, control: np.ndarray) -> Estimate | None:
    """mean(treated) - mean(control), with Welch's 95% interval: each group keeps its own
    variance, since a variant that changes the mean usually changes the spread as well.
    None when either group has fewer than 2 values."""
    treated = _values("treated", treated)
    control = _values("control", control)
    if len(treated) < 2 or len(control) < 2:
        return None
    treated_var = treated.var(ddof=1) / len(treated)  # the squared standard error of each mean
    control_var = control.var(ddof=1) / len(control)
    return _estimate(
        value=treated.mean() - control.mean(),
        standard_error=math.sqrt(treated_var + control_var),
        degrees_of_freedom=_welch_degrees_of_freedom(
            treated_var, len(treated), control_var, len(control)
        ),
        decisions=len(treated) + len(control),
    )


@dataclass(frozen=True)
class Sums:
    """A sample by its size, sum and sum of squares: what a database adds up in one query,
    so that a mean over millions of logged rewards never loads them."""

    count: int
    total: float
    squares: float

    @property
    def mean(self) -> float:
        return self.total / self.count

    @property
    def squared_error(self) -> float:
        """The squared standard error of the mean (the sample variance over the count)."""
        spread = max(self.squares - self.count * self.mean**2, 0.0)
        return spread / (self.count - 1) / self.count


def mean_of_sums(sample: Sums) -> Estimate | None:
    """`mean_interval` of a sample known by its sums; None with fewer than 2 values."""
    if sample.count < 2:
        return None
    return _estimate(
        value=sample.mean,
        standard_error=math.sqrt(sample.squared_error),
        degrees_of_freedom=sample.count - 1,
        decisions=sample.count,
    )


def difference_of_sums(treated: Sums, control: Sums) -> Estimate | None:
    """`difference` of two samples known by their sums (Welch's interval)."""
    if treated.count < 2 or control.count < 2:
        return None
    return _estimate(
        value=treated.mean - control.mean,
        standard_error=math.sqrt(treated.squared_error + control.squared_error),
        degrees_of_freedom=_welch_degrees_of_freedom(
            treated.squared_error, treated.count, control.squared_error, control.count
        ),
        decisions=treated.count + control.count,
    )


def ips(rewards: np.ndarray, propensities: np.ndarray, target: np.ndarray) -> Estimate | None:
    """The target policy's mean reward by inverse propensity scoring.

    rewards[i] is the logged reward of decision i; propensities[i] the probability with which
    the logging policy chose the logged variant, in (0, 1]; target[i] the probability with
    which the evaluated policy would have chosen that same variant in that decision's context,
    in [0, 1]. Each reward is weighted by target / propensity, which makes the weighted mean
    unbiased for the target policy. None with fewer than 2 decisions.
    """
    rewards, propensities, target = _logged(rewards, propensities, target)
    if len(rewards) < 2:
        return None
    return _mean_of(target / propensities * rewards)


def snips(rewards: np.ndarray, propensities: np.ndarray, target: np.ndarray) -> Estimate | None:
    """The target policy's mean reward by self-normalised IPS: sum(w r) / sum(w).

    Dividing by the weights' sum rather than the count keeps the estimate within the range of
    the rewards and removes the noise of the weights' sum, at the cost of a small bias that
    vanishes as the log grows. The interval is the delta method's: the estimate moves like the
    mean of w (r - value) / mean(w). Same arguments as `ips`; None with fewer than 2
    decisions the target policy could have made (weights above 0).
    """
    rewards, propensities, target = _logged(rewards, propensities, target)
    weights = target / propensities
    if np.count_nonzero(weights) < 2:
        return None
    value = float((weights * rewards).sum() / weights.sum())
    influence = weights * (rewards - value) / weights.mean()
    return _estimate(
        value=value,
        standard_error=influence.std(ddof=1) / math.sqrt(len(rewards)),
        degrees_of_freedom=len(rewards) - 1,
        decisions=len(rewards),
    )


def doubly_robust(
    rewards: np.ndarray,
    propensities: np.ndarray,
    target: np.ndarray,
    predicted_logged: np.ndarray,
    expected_under_target: np.ndarray,
) -> Estimate | None:
    """The target policy's mean reward by a reward model, corrected by IPS on its errors.

    predicted_logged[i] is the model's predicted reward of the logged variant in decision i's
    context; expected_under_target[i] the model's expected reward of the target policy in that
    context: the sum over variants a of target_policy(a | x_i) * predicted(a | x_i). The
    correction averages to the model's bias, so a wrong model costs width, not accuracy
    (provided it was not fit on the same decisions); a good one removes most of IPS's noise.
    Other arguments as `ips`; None with fewer than 2 decisions.
    """
    rewards, propensities, target = _logged(rewards, propensities, target)
    predicted_logged = _values("predicted_logged", predicted_logged)
    expected_under_target = _values("expected_under_target", expected_under_target)
    _same_length(
        rewards=rewards,
        predicted_logged=predicted_logged,
        expected_under_target=expected_under_target,
    )
    if len(rewards) < 2:
        return None
    errors = rewards - predicted_logged
    return _mean_of(expected_under_target + target / propensities * errors)


def policy_value(
    rewards: np.ndarray,
    propensities: np.ndarray,
    target: np.ndarray,
    predicted_logged: np.ndarray | None = None,
    expected_under_target: np.ndarray | None = None,
) -> dict[str, dict[str, float | int] | None]:
    """Every estimate of the target policy's mean reward, ready for JSON: {"ips", "snips",
    "doubly_robust"}, each an `Estimate.as_dict()` or None. Doubly robust needs the model's
    predictions (both arrays, see `doubly_robust`), and is None without them."""
    if (predicted_logged is None) != (expected_under_target is None):
        raise ValueError("give both predicted_logged and expected_under_target, or neither")
    robust = None
    if predicted_logged is not None and expected_under_target is not None:
        robust = doubly_robust(
            rewards, propensities, target, predicted_logged, expected_under_target
        )
    return {
        "ips": _as_dict(ips(rewards, propensities, target)),
        "snips": _as_dict(snips(rewards, propensities, target)),
        "doubly_robust": _as_dict(robust),
    }


def _as_dict(estimate: Estimate | None) -> dict[str, float | int] | None:
    return None if estimate is None else estimate.as_dict()


def _mean_of(terms: np.ndarray) -> Estimate:
    """The mean of per-decision terms, with the interval of a sample mean."""
    return _estimate(
        value=terms.mean(),
        standard_error=terms.std(ddof=1) / math.sqrt(len(terms)),
        degrees_of_freedom=len(terms) - 1,
        decisions=len(terms),
    )


def _estimate(
    value: float, standard_error: float, degrees_of_freedom: float, decisions: int
) -> Estimate:
    half_width = _t_quantile(degrees_of_freedom) * standard_error
    low, high = value - half_width, value + half_width
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError("the estimate overflows: rewards or weights (1 / propensity) too large")
    return Estimate(float(value), float(low), float(high), int(decisions))


def _t_quantile(degrees_of_freedom: float) -> float:
    """The 97.5% quantile of Student's t, which sets a 95% interval's half-width in standard
    errors. A fractional number of degrees of freedom (Welch's) is rounded down, which widens
    the interval a little rather than narrowing it."""
    if degrees_of_freedom < len(_T_975) + 1:
        return _T_975[max(int(degrees_of_freedom), 1) - 1]
    # Beyond 30, the first terms of t's expansion around the normal: within 0.001 of exact.
    nu, z = degrees_of_freedom, _Z_975
    return z + (z**3 + z) / (4 * nu) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * nu**2)


def _welch_degrees_of_freedom(
    treated_var: float, treated_n: int, control_var: float, control_n: int
) -> float:
    """Welch-Satterthwaite's degrees of freedom of a difference of two means, from each mean's
    squared standard error. Computed on shares of the total, so that it cannot overflow."""
    total = treated_var + control_var
    if total == 0:  # no spread at all: the interval is the value, whatever the quantile
        return treated_n + control_n - 2
    treated_share, control_share = treated_var / total, control_var / total
    return 1 / (treated_share**2 / (treated_n - 1) + control_share**2 / (control_n - 1))


def _logged(
    rewards: np.ndarray, propensities: np.ndarray, target: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three arrays of a log, checked: one entry per decision, and probabilities."""
    rewards = _values("rewards", rewards)
    propensities = _values("propensities", propensities)
    target = _values("target", target)
    _same_length(rewards=rewards, propensities=propensities, target=target)
    if np.any(propensities <= 0) or np.any(propensities > 1):
        # 0 would mean the logged variant could not have been shown: the log is wrong.
        raise ValueError("propensities must be probabilities in (0, 1]")
    if np.any(target < 0) or np.any(target > 1):
        raise ValueError("target must be probabilities in [0, 1]")
    return rewards, propensities, target


def _values(name: str, values: np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a one-dimensional array, one value per decision")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite numbers (no NaN, no infinity)")
    return array


def _same_length(**arrays: np.ndarray) -> None:
    lengths = {name: len(array) for name, array in arrays.items()}
    if len(set(lengths.values())) > 1:
        described = ", ".join(f"{name} {length}" for name, length in lengths.items())
        raise ValueError(f"one value per decision in each array, but the lengths are {described}")
