"""The policy math against closed forms (pure numpy, no server)."""

from __future__ import annotations

import numpy as np
import pytest

from bandit import policy


def stats_from(variant_rewards: list[list[float]]) -> policy.LearnedStats:
    rewards = [np.asarray(r, dtype=float) for r in variant_rewards]
    return policy.LearnedStats(
        variant_ids=list(range(len(rewards))),
        updates=np.array([len(r) for r in rewards], dtype=float),
        reward_sum=np.array([r.sum() for r in rewards]),
        reward_sq_sum=np.array([(r**2).sum() for r in rewards]),
        non_binary_rewards=sum(int(((r != 0) & (r != 1)).sum()) for r in rewards),
    )


def test_context_encoding_is_one_hot_for_categories_and_raw_for_numbers():
    features = policy.encode_context(
        {"colour": "red", "vip": True, "age": 31, "score": 0.5, "missing": None}
    )
    assert features == {
        '["colour","red"]': 1.0,
        '["vip",true]': 1.0,
        '["age"]': 31.0,
        '["score"]': 0.5,
    }
    # keys and values cannot collide, whatever they contain
    assert policy.encode_context({'a","b': "c"}) != policy.encode_context({"a": 'b","c'})


def test_feature_vector_has_a_bias_and_ignores_unknown_features():
    index = {'["colour","red"]': 1, '["age"]': 2}
    vector = policy.feature_vector({'["colour","red"]': 1.0, '["city","x"]': 1.0}, index)
    assert vector == {0: 1.0, 1: 1.0}


def test_beta_bernoulli_matches_the_conjugate_update():
    stats = stats_from([[1, 0, 1, 1], [0, 0]])
    posterior = policy.build_posterior(stats)  # two variants: the pooled prior is Beta(1, 1)
    assert isinstance(posterior, policy.BetaBernoulli)
    np.testing.assert_allclose(posterior.alpha, [1 + 3, 1 + 0])
    np.testing.assert_allclose(posterior.beta, [1 + 1, 1 + 2])
    rng = np.random.default_rng(0)
    draws = np.stack([posterior.sample({}, rng) for _ in range(20000)])
    np.testing.assert_allclose(draws.mean(axis=0), [4 / 6, 1 / 4], atol=0.01)


def test_normal_inverse_gamma_matches_the_closed_form():
    rewards = [[3.0, 5.0, 4.0, 6.5], [10.0]]
    posterior = policy.build_posterior(stats_from(rewards))
    assert isinstance(posterior, policy.NormalInverseGamma)
    alpha, beta = policy.NIG_ALPHA, policy.NIG_BETA  # one noise variance: evidence is summed
    for v, data in enumerate(rewards):
        y = np.asarray(data)
        n, mean = len(y), y.mean()
        kappa = policy.NIG_KAPPA + n
        mu = (policy.NIG_KAPPA * policy.NIG_MEAN + y.sum()) / kappa
        alpha += n / 2
        beta += 0.5 * ((y - mean) ** 2).sum() + policy.NIG_KAPPA * n * (
            mean - policy.NIG_MEAN
        ) ** 2 / (2 * kappa)
        assert posterior.kappa[v] == pytest.approx(kappa)
        assert posterior.mu[v] == pytest.approx(mu)
    assert posterior.alpha == pytest.approx(alpha)
    assert posterior.beta == pytest.approx(beta)
    # the marginal of each mean is Student-t: variance beta / ((alpha - 1) kappa)
    rng = np.random.default_rng(1)
    draws = np.stack([posterior.sample({}, rng) for _ in range(40000)])
    for v in range(2):
        assert draws[:, v].mean() == pytest.approx(posterior.mu[v], abs=0.05)
        expected_var = posterior.beta / ((posterior.alpha - 1) * posterior.kappa[v])
        assert draws[:, v].var() == pytest.approx(expected_var, rel=0.1)


@pytest.mark.parametrize("sampling", policy.SAMPLING_RULES)
def test_a_variant_whose_rewards_were_all_zero_keeps_being_tried(sampling):
    """Revenue per visit: variant 1 earned nothing in its first 40 visits, variant 0 earned 5.0
    in a tenth of its visits. Variant 1's own rewards show no spread at all, yet 40 visits say
    little about a rate this low: it must still win a share of the draws (a per-variant noise
    variance once collapsed it to none in 4,000)."""
    earning = [5.0 if i % 10 == 0 else 0.0 for i in range(400)]
    posterior = policy.build_posterior(stats_from([earning, [0.0] * 40]))
    rng = np.random.default_rng(4)
    wins = sum(
        policy.choose(posterior, {}, rng, uniform=False, variants=2, sampling=sampling).index
        for _ in range(4000)
    )
    assert 0.005 < wins / 4000 < 0.5  # about P(40 zeros | a tenth earn) = 0.9**40, 1.5%

    # the same with a context: 0/1 clicks, variant 1 unlucky in its first 30 visits
    xs = [np.ones((400, 1)), np.ones((30, 1))]
    ys = [np.array([1.0 if i % 8 == 0 else 0.0 for i in range(400)]), np.zeros(30)]
    linear = policy.build_posterior(_linear_stats(xs, ys))
    wins = sum(
        policy.choose(linear, {0: 1.0}, rng, uniform=False, variants=2, sampling=sampling).index
        for _ in range(4000)
    )
    assert 0.005 < wins / 4000 < 0.5  # about 0.875**30, 1.8%


def _linear_stats(xs: list[np.ndarray], ys: list[np.ndarray]) -> policy.LearnedStats:
    stats = stats_from([list(y) for y in ys])
    stats.xtx = np.stack([x.T @ x for x in xs])
    stats.xty = np.stack([x.T @ y for x, y in zip(xs, ys, strict=True)])
    return stats


def test_linear_regression_matches_the_closed_form():
    rng = np.random.default_rng(2)
    xs, ys = [], []
    for true in ([0.2, 0.5, -0.1], [0.6, -0.3, 0.2]):
        x = np.column_stack([np.ones(200), rng.integers(0, 2, 200), rng.normal(size=200)])
        xs.append(x)
        ys.append(x @ np.asarray(true) + rng.normal(scale=0.3, size=200))
    stats = _linear_stats(xs, ys)
    posterior = policy.build_posterior(stats)
    assert isinstance(posterior, policy.LinearRegression)
    residuals = []
    for v in range(2):
        precision = xs[v].T @ xs[v] + policy.RIDGE * np.eye(3)
        mean = np.linalg.solve(precision, xs[v].T @ ys[v])
        np.testing.assert_allclose(posterior.weights[v], mean, rtol=1e-9)
        np.testing.assert_allclose(posterior.covariance[v], np.linalg.inv(precision), rtol=1e-9)
        residuals.append(ys[v] @ ys[v] - mean @ precision @ mean)
    assert posterior.alpha == pytest.approx(policy.NIG_ALPHA + 200)  # one noise variance
    assert posterior.beta == pytest.approx(policy.NIG_BETA + sum(residuals) / 2)

    # x^T beta is Student-t with mean x^T m and variance beta/(alpha-1) * x^T A^-1 x
    x = {0: 1.0, 1: 1.0, 2: 0.5}
    vector = np.array([1.0, 1.0, 0.5])
    draws = np.stack([posterior.sample(x, rng) for _ in range(40000)])
    for v in range(2):
        expected_mean = vector @ posterior.weights[v]
        expected_var = (
            posterior.beta / (posterior.alpha - 1) * (vector @ posterior.covariance[v] @ vector)
        )
        assert draws[:, v].mean() == pytest.approx(expected_mean, abs=0.01)
        assert draws[:, v].var() == pytest.approx(expected_var, rel=0.1)
    np.testing.assert_allclose(posterior.mean(x), [vector @ w for w in posterior.weights])


def test_the_model_follows_the_data():
    assert isinstance(policy.build_posterior(stats_from([[0, 1], [1]])), policy.BetaBernoulli)
    assert isinstance(
        policy.build_posterior(stats_from([[0, 1], [0.5]])), policy.NormalInverseGamma
    )
    empty = policy.LearnedStats.empty([0, 1, 2])
    assert isinstance(policy.build_posterior(empty), policy.BetaBernoulli)


def test_choose_is_uniform_before_the_minimum_and_greedy_in_the_limit():
    rng = np.random.default_rng(3)
    sure = policy.build_posterior(stats_from([[1] * 500, [0] * 500, [0] * 500]))
    uniform = [policy.choose(sure, {}, rng, uniform=True, variants=3).index for _ in range(3000)]
    counts = np.bincount(uniform, minlength=3)
    assert (counts > 900).all(), counts
    choices = [policy.choose(sure, {}, rng, uniform=False, variants=3) for _ in range(200)]
    assert all(c.index == 0 and c.exploit for c in choices)


def test_credible_interval_and_probability_of_being_best():
    rng = np.random.default_rng(4)
    posterior = policy.build_posterior(stats_from([[1] * 60 + [0] * 40, [1] * 40 + [0] * 60]))
    low, high, best = policy.credible_interval(posterior, {}, rng)
    assert low[0] < 61 / 102 < high[0]
    assert high[0] - low[0] == pytest.approx(2 * 1.96 * np.sqrt(0.6 * 0.4 / 102), rel=0.15)
    assert best[0] > 0.95 and best.sum() == pytest.approx(1.0)


def test_optimistic_sampling_never_draws_a_variant_below_its_estimate():
    """Optimistic sampling takes each draw or the posterior mean, whichever is higher: the
    chance that a variant wins is that of its draw beating the others' optimistic draws."""
    posterior = policy.build_posterior(stats_from([[1] * 6 + [0] * 4, [1] * 5 + [0] * 5]))
    rng = np.random.default_rng(7)
    picks = [
        policy.choose(posterior, {}, rng, uniform=False, variants=2, sampling=policy.OPTIMISTIC)
        for _ in range(20000)
    ]
    # Closed form by a large Monte Carlo of the two Beta posteriors, Beta(7, 5) and Beta(6, 6).
    a = np.maximum(rng.beta(7, 5, 400_000), 7 / 12)
    b = np.maximum(rng.beta(6, 6, 400_000), 6 / 12)
    assert np.mean([c.index == 0 for c in picks]) == pytest.approx(np.mean(a > b), abs=0.012)
    # Standard sampling compares the plain draws: the worse-looking variant wins more often.
    plain = [
        policy.choose(posterior, {}, rng, uniform=False, variants=2, sampling=policy.STANDARD)
        for _ in range(20000)
    ]
    reference = np.mean(rng.beta(7, 5, 400_000) > rng.beta(6, 6, 400_000))
    assert np.mean([c.index == 0 for c in plain]) == pytest.approx(reference, abs=0.012)
    assert np.mean(a > b) > reference


def test_an_unlucky_variant_keeps_being_tried_by_both_rules():
    """A variant that had no click in its first 6 visits, beside one at 30% over 100: under
    either rule it still wins about the chance that its posterior draw beats the other."""
    posterior = policy.build_posterior(stats_from([[1] * 30 + [0] * 70, [0] * 6]))
    rng = np.random.default_rng(8)
    for sampling in policy.SAMPLING_RULES:
        picks = [
            policy.choose(posterior, {}, rng, uniform=False, variants=2, sampling=sampling)
            for _ in range(20000)
        ]
        share = np.mean([c.index == 1 for c in picks])
        assert 0.02 < share < 0.2, (sampling, share)  # P(Beta(1, 7) > Beta(31, 71)) ~ 0.1


def test_the_pooled_prior_is_flat_for_few_variants_and_moves_to_the_pooled_rate_with_more():
    three = stats_from([[1, 0, 0, 0]] * 3)
    assert policy.pooled_beta_prior(three) == (1.0, 1.0)
    # Six variants, 2 clicks in 58 visits: pooled rate (2 + 1) / (58 + 2) = 0.05, weight 1 - 3/6.
    six = stats_from([[1] + [0] * 9] * 2 + [[0] * 10] * 3 + [[0] * 8])
    a, b = policy.pooled_beta_prior(six)
    assert a == pytest.approx(1.0)
    assert b == pytest.approx(1.0 + 0.5 * (0.95 / 0.05 - 1.0))
    posterior = policy.build_posterior(six)
    assert isinstance(posterior, policy.BetaBernoulli)
    np.testing.assert_allclose(posterior.mean({}), (1 + six.reward_sum) / (1 + b + six.updates))
    flat = policy.build_posterior(six, policy.FLAT)
    np.testing.assert_allclose(flat.alpha, 1 + six.reward_sum)
    np.testing.assert_allclose(flat.beta, 1 + six.updates - six.reward_sum)
    # Rates above one half: the mirror image. 53 of 59 pooled: (53 + 1) / (59 + 2) = 54 / 61.
    high = stats_from([[1] * 9 + [0]] * 5 + [[1] * 8 + [0]])
    a, b = policy.pooled_beta_prior(high)
    assert a == pytest.approx(1.0 + 0.5 * ((54 / 61) / (7 / 61) - 1.0))
    assert b == pytest.approx(1.0)
    # Fifty variants: 94% of the way to Beta(1, (1 - m) / m).
    fifty = stats_from([[0] * 19 + [1]] * 50)
    rate = 51 / 1002
    assert policy.pooled_beta_prior(fifty)[1] == pytest.approx(1 + 0.94 * ((1 - rate) / rate - 1))


class FixedPosterior(policy.Posterior):
    """Draws and means given outright: which of them counts is all that is left to chance."""

    def __init__(self, draws: np.ndarray, means: np.ndarray) -> None:
        self.draws, self.means = draws, means

    def sample_and_mean(self, x, rng):
        return self.draws.copy(), self.means.copy()


@pytest.mark.parametrize("variants", [4, 10, 50])
def test_focused_sampling_lets_each_variant_draw_with_probability_three_in_k(variants):
    # Variant 0 has the best draw and the worst mean: it wins exactly when its draw counts.
    means = np.full(variants, 0.5)
    means[0] = 0.0
    draws = means.copy()
    draws[0] = 1.0
    rng = np.random.default_rng(variants)
    trials = 20000
    wins = sum(
        policy.choose(
            FixedPosterior(draws, means),
            {},
            rng,
            uniform=False,
            variants=variants,
            sampling=policy.FOCUSED,
        ).index
        == 0
        for _ in range(trials)
    )
    share = 3 / variants
    assert wins / trials == pytest.approx(share, abs=4 * np.sqrt(share * (1 - share) / trials))


def test_focused_sampling_is_optimistic_sampling_for_up_to_three_variants():
    posterior = policy.build_posterior(stats_from([[1, 0, 0], [0, 0, 1, 1], [1]]))
    for seed in range(200):
        focused = policy.choose(
            posterior, {}, np.random.default_rng(seed), uniform=False, variants=3
        )
        optimistic = policy.choose(
            posterior,
            {},
            np.random.default_rng(seed),
            uniform=False,
            variants=3,
            sampling=policy.OPTIMISTIC,
        )
        assert focused == optimistic


def with_window(stats: policy.LearnedStats, recent: list[list[float]]) -> policy.LearnedStats:
    """`stats` whose recent rewards are each variant's last ones, at full weight (a window):
    the weights' sum and the sum of their squares are then both the window's length."""
    counts = np.array([len(r) for r in recent], dtype=float)
    sums = np.array([sum(r) for r in recent], dtype=float)
    squares = np.array([sum(y * y for y in r) for r in recent], dtype=float)
    stats.recent = policy.Recent(counts, sums, squares, counts.copy(), np.zeros(len(recent)))
    return stats


def test_recent_rewards_have_a_half_life_of_recent_half_life_rewards():
    weight_of_the_oldest = policy.RECENT_DECAY**policy.RECENT_HALF_LIFE
    assert weight_of_the_oldest == pytest.approx(0.5, rel=1e-12)


def test_the_bernoulli_divergence_is_the_closed_form():
    # KL(1/2 || 1/4) = 1/2 ln(2) + 1/2 ln(2/3) = 1/2 ln(4/3).
    got = policy.bernoulli_divergence(np.array([0.5, 0.3]), np.array([0.25, 0.3]))
    assert got.tolist() == pytest.approx([0.5 * np.log(4 / 3), 0.0], abs=1e-12)


def test_the_change_statistic_of_0_1_rewards_is_the_likelihood_ratio():
    """50 rewards at 0.1, then 50 at 0.5: the ratio of two Bernoulli means against one."""
    earlier, later = [1.0] * 5 + [0.0] * 45, [1.0] * 25 + [0.0] * 25
    stats = with_window(stats_from([earlier + later, [1.0, 0.0] * 50]), [later, [1.0, 0.0] * 25])

    def kl(p: float, q: float) -> float:
        return p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q))

    statistic = policy.change_statistic(stats)
    assert statistic[0] == pytest.approx(50 * kl(0.5, 0.3) + 50 * kl(0.1, 0.3), rel=1e-9)
    assert statistic[1] == pytest.approx(0.0, abs=1e-12)  # its rate never moved
    assert statistic[0] > policy.CHANGE_THRESHOLD
    assert policy.changed_variants(stats) == [0]


def test_the_change_statistic_of_real_rewards_is_the_gaussian_likelihood_ratio():
    earlier, later = [1.0, 3.0] * 20, [4.0, 6.0] * 20  # means 2 and 5, 40 rewards each
    stats = with_window(stats_from([earlier + later, [2.5] * 80]), [later, [2.5] * 40])
    everything = np.array(earlier + later)
    variance = everything.var()  # the variant's pooled variance: (1 + 1) / 2 + 1.5^2
    expected = (40 * (5 - 3.5) ** 2 + 40 * (2 - 3.5) ** 2) / (2 * variance)
    assert policy.change_statistic(stats)[0] == pytest.approx(expected, rel=1e-9)
    assert policy.changed_variants(stats) == [0]


def test_no_change_is_tested_on_too_little_evidence_or_a_context():
    short = [1.0] * 29  # recent side below CHANGE_MINIMUM
    stats = with_window(stats_from([[0.0] * 100 + short, [0.0] * 10]), [short, [0.0] * 5])
    assert policy.change_statistic(stats).tolist() == [0.0, 0.0]
    assert policy.changed_variants(stats) == []
    recent_only = with_window(stats_from([[1.0] * 60]), [[1.0] * 60])  # nothing before it
    assert policy.change_statistic(recent_only).tolist() == [0.0]
    contextual = with_window(stats_from([[0.0] * 50 + [1.0] * 50]), [[1.0] * 50])
    contextual.xtx, contextual.xty = np.eye(1)[None] * 100, np.array([[50.0]])
    assert policy.change_statistic(contextual)[0] > policy.CHANGE_THRESHOLD
    assert policy.changed_variants(contextual) == []  # contextual Tests do not forget
    assert policy.change_statistic(stats_from([[1.0] * 100])).tolist() == [0.0]  # none kept


def test_a_variant_that_changed_keeps_its_recent_rewards_alone():
    later = [0.0] * 50
    stats = with_window(stats_from([[1.0] * 50 + later, [1.0] * 3]), [later, [1.0] * 3])
    policy.forget_before_change(stats, policy.changed_variants(stats))
    assert stats.updates.tolist() == [50.0, 3.0]
    assert stats.reward_sum.tolist() == [0.0, 3.0]
    assert stats.forgotten_updates == 50.0
    assert stats.total_updates == 103  # every reward counted still counts for the uniform start


@pytest.mark.parametrize(
    ("sampling", "among", "minimum_share"),
    [
        (policy.FOCUSED, None, 0.0),
        (policy.STANDARD, None, 0.0),
        (policy.FOCUSED, [1, 3, 4], 0.0),
        (policy.OPTIMISTIC, None, 0.1),
    ],
)
def test_choice_probabilities_are_how_often_choose_chooses(sampling, among, minimum_share):
    """Each variant's estimated probability matches the share of decisions `choose` gives it
    with the same posterior and rule, within the estimate's stated error."""
    rates = np.array([0.05, 0.06, 0.07, 0.08, 0.09])
    stats = policy.LearnedStats(list(range(5)), np.full(5, 400.0), rates * 400, rates * 400)
    posterior = policy.build_posterior(stats)
    rng = np.random.default_rng(7)
    arguments = dict(
        uniform=False, variants=5, sampling=sampling, among=among, minimum_share=minimum_share
    )
    estimated = policy.choice_probabilities(posterior, {0: 1.0}, rng, **arguments)
    assert estimated.sum() == pytest.approx(1.0)
    if among is not None:
        assert set(np.flatnonzero(estimated)) == set(among)
    decisions = 20_000
    chosen = np.bincount(
        [policy.choose(posterior, {0: 1.0}, rng, **arguments).index for _ in range(decisions)],
        minlength=5,
    )
    share = chosen / decisions
    # Estimate's own error (at most 1 / (n + k) bias, 0.5 / sqrt(n) standard error) and the
    # frequency's, four standard errors each.
    draws = policy.PROPENSITY_DRAWS
    tolerance = 1 / draws + 4 * 0.5 / np.sqrt(draws) + 4 * np.sqrt(share * (1 - share) / decisions)
    assert np.all(np.abs(estimated - share) <= tolerance), (estimated, share)


@pytest.mark.parametrize("sampling", policy.SAMPLING_RULES)
def test_contextual_choice_probabilities_are_each_contexts_choice_probabilities(sampling):
    """For many contexts at once, what `choice_probabilities` estimates for each one alone,
    within two estimates' stated errors; the draws' mean and spread are the closed form's."""
    rng = np.random.default_rng(5)
    xs, ys = [], []
    for true in ([0.2, 0.3, -0.2], [0.3, -0.1, 0.1], [0.25, 0.0, 0.0], [0.1, 0.4, 0.3]):
        x = np.column_stack([np.ones(60), rng.integers(0, 2, 60), rng.normal(size=60)])
        xs.append(x)
        ys.append(x @ np.asarray(true) + rng.normal(scale=0.3, size=60))
    posterior = policy.build_posterior(_linear_stats(xs, ys))
    assert isinstance(posterior, policy.LinearRegression)
    contexts = np.array([[1.0, 0.0, -1.0], [1.0, 1.0, 0.0], [1.0, 1.0, 1.5], [1.0, 0.0, 0.3]])
    draws = 20_000
    sampled = posterior.sample_many_at(contexts, rng, draws)
    assert sampled.shape == (4, draws, 4)
    for row, context in enumerate(contexts):
        x = {i: float(value) for i, value in enumerate(context)}
        mean, spread = posterior._project(x)
        assert sampled[row].mean(axis=0) == pytest.approx(mean, abs=0.02)
        # Student-t marginals: variance spread * beta / (alpha - 1).
        expected = spread * posterior.beta / (posterior.alpha - 1)
        assert sampled[row].var(axis=0) == pytest.approx(expected, rel=0.1)
    together = policy.contextual_choice_probabilities(
        posterior, contexts, rng, uniform=False, sampling=sampling, minimum_share=0.05
    )
    assert together.shape == (4, 4) and np.allclose(together.sum(axis=1), 1.0)
    assert together.min() >= 0.05 - 1e-12
    n = policy.PROPENSITY_DRAWS
    for row, context in enumerate(contexts):
        x = {i: float(value) for i, value in enumerate(context)}
        alone = policy.choice_probabilities(
            posterior, x, rng, uniform=False, variants=4, sampling=sampling, minimum_share=0.05
        )
        assert np.all(np.abs(together[row] - alone) <= 2 / n + 2 * 4 * 0.5 / np.sqrt(n))
    uniform = policy.contextual_choice_probabilities(posterior, contexts, rng, uniform=True)
    assert uniform.tolist() == [[0.25] * 4] * 4


def test_choice_probabilities_are_exact_while_uniform():
    stats = policy.LearnedStats.empty([0, 1, 2, 3])
    posterior = policy.build_posterior(stats)
    rng = np.random.default_rng(1)
    everyone = policy.choice_probabilities(posterior, {0: 1.0}, rng, uniform=True, variants=4)
    assert everyone.tolist() == [0.25] * 4
    some = policy.choice_probabilities(
        posterior, {0: 1.0}, rng, uniform=True, variants=4, among=[0, 2]
    )
    assert some.tolist() == [0.5, 0.0, 0.5, 0.0]
    # A minimum share of 1/k for each of k variants is uniform too.
    floor = policy.choice_probabilities(
        posterior, {0: 1.0}, rng, uniform=False, variants=4, minimum_share=0.25
    )
    assert floor.tolist() == [0.25] * 4
