"""Decision quality: simulated Tests, Scout's own policy code and reference libraries side by side.

Every agent sees the same contexts and the same reward noise (per seed), decides with the model
it had at its last refresh, and learns from rewards delivered in batches, the way Scout serves:
a worker's snapshot is rebuilt from Redis's sums within a bounded staleness, and clients report
rewards some time after the decision. `batch` is both the refresh interval and the reward delay.

Scout's agent is `bandit.policy` itself (encode_context, feature_vector, build_posterior,
choose) over sufficient statistics accumulated exactly as `bandit.state`'s reward script does:
per variant the reward count, sum and sum of squares, and over [bias, admitted features] the
sums of x x^T and x y, with features admitted into a bounded vocabulary in order of appearance.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

import numpy as np

from bandit import policy

Context = dict[str, Any]
MIN_UPDATE_REQUESTS = 50  # Scout's default minimum_update_requests
MAX_FEATURES = 64  # Scout's default SCOUT_MAX_FEATURES


# --- Environments ---------------------------------------------------------------------------


@dataclass
class Environment:
    """A simulated Test: contexts, and each arm's click probability in a context at step t."""

    name: str
    title: str
    arms: int
    horizon: int
    batch: int
    draw_contexts: Callable[[np.random.Generator, int], list[Context]]
    probabilities: Callable[[Context, int], np.ndarray]
    categorical: dict[str, list[str]] = field(default_factory=dict)
    numeric: list[str] = field(default_factory=list)
    # Real-valued rewards: the expected reward plus Normal noise of this standard deviation
    # (`probabilities` then answers expected rewards). None: 0/1 rewards, clicks.
    noise_sd: float | None = None

    def vector(self, context: Context) -> np.ndarray:
        """The context as numbers for libraries that need a fixed vector (one-hot + numeric)."""
        values = [
            1.0 if context.get(key) == level else 0.0
            for key, levels in self.categorical.items()
            for level in levels
        ]
        values += [float(context.get(key, 0.0)) for key in self.numeric]
        return np.array(values or [1.0])


def _no_context(rng: np.random.Generator, n: int) -> list[Context]:
    return [{} for _ in range(n)]


def three_arm(horizon: int) -> Environment:
    rates = np.array([0.10, 0.12, 0.15])
    return Environment(
        "three_arm",
        "Three arms, click rates 10/12/15%, no context",
        3,
        horizon,
        1,
        _no_context,
        lambda context, t: rates,
    )


def two_colour(horizon: int) -> Environment:
    """Real-valued rewards (say, revenue per visit): each variant earns more for one colour."""
    table = {"red": np.array([1.0, 0.7]), "blue": np.array([0.6, 0.9])}
    return Environment(
        "two_colour",
        "Two colours, real-valued rewards (noise sd 1): each variant wins for one colour",
        2,
        horizon,
        1,
        lambda rng, n: [{"colour": str(c)} for c in rng.choice(["red", "blue"], n)],
        lambda context, t: table[context["colour"]],
        categorical={"colour": ["red", "blue"]},
        noise_sd=1.0,
    )


SEGMENT_LEVELS = {
    "device": ["mobile", "desktop", "tablet"],
    "country": ["de", "fr", "us", "uk"],
    "plan": ["free", "pro"],
}


def segments(horizon: int, *, batch: int = 1, name: str = "segments") -> Environment:
    """Four variants; click logits add a per-variant effect of each categorical feature."""
    effects = np.random.default_rng(7)  # a fixed world, the same for every seed
    base = np.array([-2.2, -2.0, -2.1, -2.3])
    weights = {
        key: {level: effects.normal(0.0, 0.45, 4) for level in levels}
        for key, levels in SEGMENT_LEVELS.items()
    }

    def probabilities(context: Context, t: int) -> np.ndarray:
        logit = base + sum(weights[key][context[key]] for key in SEGMENT_LEVELS)
        return 1.0 / (1.0 + np.exp(-logit))

    def draw(rng: np.random.Generator, n: int) -> list[Context]:
        columns = {key: rng.choice(levels, n) for key, levels in SEGMENT_LEVELS.items()}
        return [{key: str(columns[key][i]) for key in SEGMENT_LEVELS} for i in range(n)]

    title = "Segments: device x country x plan, four variants"
    if batch > 1:
        title = f"Delayed rewards: segments, rewards arrive in batches of {batch}"
    return Environment(
        name, title, 4, horizon, batch, draw, probabilities, categorical=SEGMENT_LEVELS
    )


NUMERIC_FEATURES = ["x1", "x2", "x3", "x4", "x5"]


def numeric(horizon: int) -> Environment:
    """Three variants whose click logit is linear in five numeric features and a segment."""
    world = np.random.default_rng(13)
    base = np.array([-2.0, -2.1, -2.2])
    slopes = world.normal(0.0, 0.6, (len(NUMERIC_FEATURES), 3))
    segment = {level: world.normal(0.0, 0.4, 3) for level in ("a", "b", "c")}

    def probabilities(context: Context, t: int) -> np.ndarray:
        x = np.array([context[name] for name in NUMERIC_FEATURES])
        logit = base + x @ slopes + segment[context["segment"]]
        return 1.0 / (1.0 + np.exp(-logit))

    def draw(rng: np.random.Generator, n: int) -> list[Context]:
        values = rng.uniform(0, 1, (n, len(NUMERIC_FEATURES))).round(3)
        levels = rng.choice(["a", "b", "c"], n)
        return [
            {**dict(zip(NUMERIC_FEATURES, map(float, row), strict=True)), "segment": str(level)}
            for row, level in zip(values, levels, strict=True)
        ]

    return Environment(
        "numeric",
        "Five numeric features and a segment, three variants",
        3,
        horizon,
        1,
        draw,
        probabilities,
        categorical={"segment": ["a", "b", "c"]},
        numeric=NUMERIC_FEATURES,
    )


def changing_best(horizon: int) -> Environment:
    before, after = np.array([0.10, 0.14, 0.06]), np.array([0.10, 0.06, 0.14])
    return Environment(
        "changing_best",
        "The best and the worst variant swap half-way",
        3,
        horizon,
        1,
        _no_context,
        lambda context, t: before if t < horizon // 2 else after,
    )


def many_variants(horizon: int) -> Environment:
    rates = np.random.default_rng(11).uniform(0.01, 0.06, 50)  # a fixed world
    return Environment(
        "many_variants",
        "50 variants, click rates between 1% and 6%",
        50,
        horizon,
        1,
        _no_context,
        lambda context, t: rates,
    )


def environments(horizon: int) -> list[Environment]:
    return [
        three_arm(horizon),
        two_colour(horizon),
        segments(horizon),
        numeric(horizon),
        segments(horizon, batch=500, name="delayed"),
        changing_best(horizon),
        many_variants(horizon),
    ]


def noisy(horizon: int, variants: int, *, context: bool = False) -> Environment:
    """A hard Test for lock-in: one variant at 5%, the others at 4%. Not among the seven.
    With `context`, visitors bring the context of `numeric`, which says nothing about the
    rates: a contextual model must not lock onto a worse variant by trusting what it fitted
    to noise."""
    rates = np.array([0.04] * (variants - 1) + [0.05])
    contexts = numeric(horizon) if context else None
    return Environment(
        f"noisyctx{variants}" if context else f"noisy{variants}",
        f"{variants} variants, one at 5% and the others at 4%"
        + (", whatever the context" if context else ""),
        variants,
        horizon,
        1,
        contexts.draw_contexts if contexts else _no_context,
        lambda context, t: rates,
        categorical=contexts.categorical if contexts else {},
        numeric=contexts.numeric if contexts else [],
    )


def environment(name: str, horizon: int) -> Environment:
    if name.startswith("noisyctx") and name[8:].isdigit():
        return noisy(horizon, int(name[8:]), context=True)
    if name.startswith("noisy") and name[5:].isdigit():
        return noisy(horizon, int(name[5:]))
    return next(env for env in environments(horizon) if env.name == name)


# --- Agents ---------------------------------------------------------------------------------


class Agent:
    """Decide for a batch of contexts with the current model; learn from a batch of outcomes."""

    name = "agent"

    def decide(self, contexts: Sequence[Context], t: int) -> list[int]:
        raise NotImplementedError

    def learn(self, contexts: Sequence[Context], arms: Sequence[int], rewards: Sequence[float]):
        pass

    def close(self) -> None:
        pass


class ScoutAgent(Agent):
    """Scout's policy code over sums kept exactly like Scout's Redis state."""

    name = "Scout (Thompson)"

    def __init__(
        self,
        env: Environment,
        rng: np.random.Generator,
        sampling: str = policy.FOCUSED,
        prior: str = policy.POOLED,
        forgetting: str = policy.ON_CHANGE,
    ) -> None:
        self.rng = rng
        self.sampling = sampling
        self.prior = prior
        self.forgetting = forgetting
        self.arms = env.arms
        self.vocab: dict[str, int] = {}
        dims = MAX_FEATURES + 1
        self.updates = np.zeros(env.arms)
        self.reward_sum = np.zeros(env.arms)
        self.reward_sq_sum = np.zeros(env.arms)
        self.forgotten = np.zeros((3, env.arms))  # of updates, reward_sum, reward_sq_sum
        self.recent = policy.Recent.empty(env.arms)
        self.non_binary = 0
        self.xtx = np.zeros((env.arms, dims, dims))
        self.xty = np.zeros((env.arms, dims))
        self.seen_context = False
        self._refresh()

    def _admit(self, name: str) -> int | None:
        """The vocabulary, as the decision script grows it: first come, up to the limit."""
        index = self.vocab.get(name)
        if index is None and len(self.vocab) < MAX_FEATURES:
            index = self.vocab[name] = len(self.vocab) + 1
        return index

    def _refresh(self) -> None:
        """What `bandit.state.load_learned` would read back, then the worker's posterior."""
        stats = policy.LearnedStats(
            list(range(self.arms)),
            self.updates - self.forgotten[0],
            self.reward_sum - self.forgotten[1],
            self.reward_sq_sum - self.forgotten[2],
            non_binary_rewards=self.non_binary,
            forgotten_updates=float(self.forgotten[0].sum()),
        )
        if self.forgetting == policy.ON_CHANGE:
            # As a snapshot's build does (bandit.snapshots), the reset as forget.lua's.
            stats.recent = self.recent
            changed = policy.changed_variants(stats)
            for i in changed:
                self.forgotten[:, i] = (
                    self.updates[i] - self.recent.weight[i],
                    self.reward_sum[i] - self.recent.reward_sum[i],
                    self.reward_sq_sum[i] - self.recent.reward_sq_sum[i],
                )
                self.recent.changes[i] += 1
            policy.forget_before_change(stats, changed)
        if self.seen_context:
            dims = len(self.vocab) + 1
            stats.xtx = self.xtx[:, :dims, :dims].copy()
            stats.xty = self.xty[:, :dims].copy()
            stats.feature_index = dict(self.vocab)
        self.stats = stats
        self.posterior = policy.build_posterior(stats, self.prior)

    def decide(self, contexts: Sequence[Context], t: int) -> list[int]:
        uniform = self.stats.total_updates < MIN_UPDATE_REQUESTS
        chosen = []
        for context in contexts:
            features = policy.encode_context(context)
            for name in features:
                self._admit(name)
            x = policy.feature_vector(features, self.stats.feature_index)
            choice = policy.choose(
                self.posterior,
                x,
                self.rng,
                uniform=uniform,
                variants=self.arms,
                sampling=self.sampling,
            )
            chosen.append(choice.index)
        return chosen

    def learn(self, contexts: Sequence[Context], arms: Sequence[int], rewards: Sequence[float]):
        for context, arm, reward in zip(contexts, arms, rewards, strict=True):
            self.updates[arm] += 1
            self.reward_sum[arm] += reward
            self.reward_sq_sum[arm] += reward * reward
            self.non_binary += reward not in (0, 1)
            features = policy.encode_context(context)
            if self.forgetting == policy.ON_CHANGE and not features:  # as reward.lua does
                decay, recent = policy.RECENT_DECAY, self.recent
                recent.weight[arm] = decay * recent.weight[arm] + 1
                recent.reward_sum[arm] = decay * recent.reward_sum[arm] + reward
                recent.reward_sq_sum[arm] = decay * recent.reward_sq_sum[arm] + reward * reward
                recent.weight_sq[arm] = decay * decay * recent.weight_sq[arm] + 1
            if features:
                self.seen_context = True
                index = [0] + [self._admit(name) for name in features]
                values = [1.0, *features.values()]
                pairs = [(i, v) for i, v in zip(index, values, strict=True) if i is not None]
                positions = np.array([i for i, _ in pairs])
                vector = np.array([v for _, v in pairs])
                self.xtx[arm][np.ix_(positions, positions)] += np.outer(vector, vector)
                self.xty[arm, positions] += vector * reward
            else:
                self.xtx[arm, 0, 0] += 1
                self.xty[arm, 0] += reward
        self._refresh()


class VowpalAgent(Agent):
    """Vowpal Wabbit's contextual bandit over action-dependent features (`--cb_explore_adf`),
    with the context crossed with the action (`-q sa`)."""

    def __init__(self, env: Environment, seed: int, exploration: str, name: str) -> None:
        from vowpalwabbit import Workspace

        self.name = name
        self.arms = env.arms
        self.rng = np.random.default_rng(seed + 1000)
        self.vw = Workspace(f"--cb_explore_adf {exploration} -q sa --quiet --random_seed {seed}")
        self.pending: dict[int, tuple[list[str], float]] = {}

    @staticmethod
    def _shared(context: Context) -> str:
        parts = []
        for key, value in context.items():
            if isinstance(value, str):
                parts.append(f"{key}={value}")
            else:
                parts.append(f"{key}:{value}")
        return "shared |s " + " ".join(parts) if parts else "shared |s const"

    def decide(self, contexts: Sequence[Context], t: int) -> list[int]:
        chosen = []
        self.probabilities = []
        for context in contexts:
            lines = [self._shared(context)] + [f"|a arm{a}" for a in range(self.arms)]
            pmf = np.asarray(self.vw.predict(lines), dtype=float)
            pmf = pmf / pmf.sum()
            arm = int(self.rng.choice(self.arms, p=pmf))
            chosen.append(arm)
            self.probabilities.append(float(pmf[arm]))
        return chosen

    def learn(self, contexts: Sequence[Context], arms: Sequence[int], rewards: Sequence[float]):
        for context, arm, reward, probability in zip(
            contexts, arms, rewards, self.probabilities, strict=True
        ):
            lines = [self._shared(context)] + [f"|a arm{a}" for a in range(self.arms)]
            lines[arm + 1] = f"0:{-reward}:{probability} {lines[arm + 1]}"
            self.vw.learn(lines)

    def close(self) -> None:
        self.vw.finish()


class MabwiserAgent(Agent):
    """A MABWiser learning policy, refit incrementally with each delivered batch.

    Note on MABWiser's LinTS (2.7): each variant's model holds its own copy of one random
    generator state, so every variant draws the same standard normal vector. The draws move
    together and the variant with the best mean wins nearly every time: its LinTS behaves close
    to greedy, which costs little where contexts vary enough to explore for free.
    """

    def __init__(self, env: Environment, seed: int, learning_policy: Any, name: str) -> None:
        from mabwiser.mab import MAB

        self.name = name
        self.env = env
        self.contextual = name.startswith("MABWiser LinTS")
        self.mab = MAB(arms=list(range(env.arms)), learning_policy=learning_policy, seed=seed)
        self.fitted = False
        self.rng = np.random.default_rng(seed + 2000)

    def _matrix(self, contexts: Sequence[Context]) -> np.ndarray:
        return np.stack([self.env.vector(context) for context in contexts])

    def decide(self, contexts: Sequence[Context], t: int) -> list[int]:
        if not self.fitted:
            return [int(a) for a in self.rng.integers(self.env.arms, size=len(contexts))]
        if self.contextual:
            predicted = self.mab.predict(self._matrix(contexts))
        else:
            predicted = [self.mab.predict() for _ in contexts]
        return [int(a) for a in np.atleast_1d(predicted)]

    def learn(self, contexts: Sequence[Context], arms: Sequence[int], rewards: Sequence[float]):
        matrix = self._matrix(contexts) if self.contextual else None
        if self.fitted:
            self.mab.partial_fit(list(arms), list(rewards), matrix)
        else:
            self.mab.fit(list(arms), list(rewards), matrix)
            self.fitted = True


class UniformAgent(Agent):
    name = "Uniform random"

    def __init__(self, env: Environment, seed: int) -> None:
        self.arms = env.arms
        self.rng = np.random.default_rng(seed + 3000)

    def decide(self, contexts: Sequence[Context], t: int) -> list[int]:
        return [int(a) for a in self.rng.integers(self.arms, size=len(contexts))]


class OracleAgent(Agent):
    name = "Oracle"

    def __init__(self, env: Environment) -> None:
        self.env = env

    def decide(self, contexts: Sequence[Context], t: int) -> list[int]:
        return [int(np.argmax(self.env.probabilities(c, t + i))) for i, c in enumerate(contexts)]


def make_agents(env: Environment, seed: int) -> list[Agent]:
    from mabwiser.mab import LearningPolicy

    standard = ScoutAgent(
        env, np.random.default_rng(seed + 4000), policy.STANDARD, policy.FLAT, policy.NEVER
    )
    standard.name = "Thompson sampling in process"
    agents: list[Agent] = [
        ScoutAgent(env, np.random.default_rng(seed + 4000)),
        standard,
        VowpalAgent(env, seed, "--squarecb", "VW cb_explore_adf SquareCB"),
        VowpalAgent(env, seed, "--epsilon 0.05", "VW cb_explore_adf epsilon 0.05"),
        MabwiserAgent(env, seed, LearningPolicy.LinTS(alpha=0.25), "MABWiser LinTS"),
        MabwiserAgent(env, seed, LearningPolicy.EpsilonGreedy(epsilon=0.1), "Epsilon-greedy 0.1"),
        UniformAgent(env, seed),
        OracleAgent(env),
    ]
    if env.noise_sd is None:  # MABWiser's Thompson sampling takes 0/1 rewards only
        agents.insert(
            4, MabwiserAgent(env, seed, LearningPolicy.ThompsonSampling(), "MABWiser Thompson")
        )
    return agents


LIBRARIES = (
    "Thompson sampling in process",  # textbook Thompson sampling on Scout's own models
    "VW cb_explore_adf SquareCB",
    "VW cb_explore_adf epsilon 0.05",
    "MABWiser LinTS",
    "MABWiser Thompson",
    "Epsilon-greedy 0.1",
)


# --- Running --------------------------------------------------------------------------------


def simulate(
    env: Environment,
    seed: int,
    *,
    agents: list[Agent] | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    """One seed: every agent (by default Scout and every reference, `make_agents`) faces the
    same contexts and the same coin flips per step."""
    rng = np.random.default_rng(seed)
    contexts = env.draw_contexts(rng, env.horizon)
    coins = rng.uniform(size=env.horizon)  # reward = coin < p(chosen arm): common noise
    noise = rng.standard_normal(size=env.horizon)  # or, real-valued, mean + sd * noise
    if agents is None:
        agents = make_agents(env, seed)
    outcome: dict[str, dict[str, np.ndarray]] = {}
    best = np.array([env.probabilities(c, t).max() for t, c in enumerate(contexts)])
    for agent in agents:
        started = time.perf_counter()
        regret = np.zeros(env.horizon)
        rewards = np.zeros(env.horizon)
        for start in range(0, env.horizon, env.batch):
            chunk = contexts[start : start + env.batch]
            arms = agent.decide(chunk, start)
            for offset, (context, arm) in enumerate(zip(chunk, arms, strict=True)):
                t = start + offset
                p = env.probabilities(context, t)[arm]
                if env.noise_sd is None:
                    rewards[t] = float(coins[t] < p)
                else:
                    rewards[t] = p + env.noise_sd * noise[t]
                regret[t] = best[t] - p
            agent.learn(chunk, arms, rewards[start : start + len(chunk)].tolist())
        agent.close()
        outcome[agent.name] = {
            "cumulative_regret": np.cumsum(regret),
            "rewards": rewards,
            "seconds": np.array(time.perf_counter() - started),
        }
    return outcome


def _simulate_named(name: str, horizon: int, seed: int) -> dict[str, dict[str, np.ndarray]]:
    return simulate(environment(name, horizon), seed)


def verdict(scout: np.ndarray, library: np.ndarray) -> dict[str, Any]:
    """Scout's final regret against a library's, paired by seed (same contexts, same coins).

    "worse" or "better" only when the mean difference exceeds twice its standard error: with a
    handful of seeds, a Thompson sampler's regret spreads widely, and a ratio of two means alone
    would call noise a gap.
    """
    difference = scout - library
    error = float(difference.std(ddof=1) / np.sqrt(len(difference))) if len(difference) > 1 else 0
    mean = float(difference.mean())
    if mean > 2 * error:
        call = "worse"
    elif mean < -2 * error:
        call = "better"
    else:
        call = "no worse (within noise)"
    return {"difference": round(mean, 1), "difference_se": round(error, 1), "verdict": call}


def benchmark(
    *, horizon: int, seeds: int, log: Callable[[str], None] = print
) -> tuple[dict, dict[str, dict[str, np.ndarray]]]:
    """All environments over several seeds (one process per CPU): mean reward and final regret
    (mean, standard deviation over seeds), and Scout against the best library, paired by seed."""
    summary: dict[str, Any] = {"horizon": horizon, "seeds": seeds, "environments": []}
    curves: dict[str, dict[str, np.ndarray]] = {}
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for env in environments(horizon):
            runs = list(pool.map(_simulate_named, repeat(env.name), repeat(horizon), range(seeds)))
            names = list(runs[0])
            rows = []
            final: dict[str, np.ndarray] = {}
            curves[env.name] = {}
            for name in names:
                regret = np.stack([run[name]["cumulative_regret"] for run in runs])
                reward = np.array([run[name]["rewards"].mean() for run in runs])
                seconds = np.array([float(run[name]["seconds"]) for run in runs])
                curves[env.name][name] = regret
                final[name] = regret[:, -1]
                rows.append(
                    {
                        "agent": name,
                        "mean_reward": round(float(reward.mean()), 4),
                        "mean_reward_std": round(float(reward.std()), 4),
                        "regret": round(float(regret[:, -1].mean()), 1),
                        "regret_std": round(float(regret[:, -1].std()), 1),
                        "seconds_per_seed": round(float(seconds.mean()), 2),
                    }
                )
            scout = next(row for row in rows if row["agent"] == ScoutAgent.name)
            best = min((row for row in rows if row["agent"] in LIBRARIES), key=_regret)
            summary["environments"].append(
                {
                    "name": env.name,
                    "title": env.title,
                    "arms": env.arms,
                    "batch": env.batch,
                    "rows": rows,
                    "scout_regret": scout["regret"],
                    "best_library": best["agent"],
                    "best_library_regret": best["regret"],
                    "scout_over_best_library": round(scout["regret"] / best["regret"], 3)
                    if best["regret"] > 0
                    else None,
                    **verdict(final[ScoutAgent.name], final[best["agent"]]),
                }
            )
            log(
                f"  {env.name:14} Scout regret {scout['regret']:7.1f} ± {scout['regret_std']:5.1f}"
                f"  best library {best['agent']} {best['regret']:7.1f}"
            )
    return summary, curves


def _regret(row: dict) -> float:
    return row["regret"]


def _scout_regret(
    name: str, horizon: int, sampling: str, prior: str, forgetting: str, seed: int
) -> float:
    env = environment(name, horizon)
    agent = ScoutAgent(env, np.random.default_rng(seed + 4000), sampling, prior, forgetting)
    outcome = simulate(env, seed, agents=[agent])
    return float(outcome[agent.name]["cumulative_regret"][-1])


def main() -> None:
    """Scout's policy alone, with chosen settings: how the figures that compare settings in
    `bandit/policy.py` and the README were measured.

        .venv/bin/python -m benchmarks.quality many_variants noisy2 --seeds 64 [--horizon 20000]
            [--sampling focused] [--prior pooled] [--forgetting on_change]
    """
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__.splitlines()[0])
    parser.add_argument(
        "environments",
        nargs="+",
        help="names; noisyK: K variants, 5%% vs 4%%; noisyctxK: the same with an idle context",
    )
    parser.add_argument("--seeds", type=int, default=24)
    parser.add_argument("--horizon", type=int, default=5_000)
    parser.add_argument("--sampling", choices=policy.SAMPLING_RULES, default=policy.FOCUSED)
    parser.add_argument("--prior", choices=policy.PRIORS, default=policy.POOLED)
    parser.add_argument("--forgetting", choices=policy.FORGETTING, default=policy.ON_CHANGE)
    options = parser.parse_args()
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for name in options.environments:
            regret = np.array(
                list(
                    pool.map(
                        _scout_regret,
                        repeat(name),
                        repeat(options.horizon),
                        repeat(options.sampling),
                        repeat(options.prior),
                        repeat(options.forgetting),
                        range(options.seeds),
                    )
                )
            )
            print(
                f"{name:14} {options.sampling}/{options.prior}/{options.forgetting}:"
                f" mean regret {regret.mean():6.1f}"
                f" (s.e. {regret.std(ddof=1) / np.sqrt(len(regret)):4.1f},"
                f" 90th percentile {np.percentile(regret, 90):6.1f}, worst {regret.max():6.1f})"
            )


if __name__ == "__main__":
    main()
