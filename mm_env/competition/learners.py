"""The market makers that learn, seen as a batch of one-MM environments; the others follow a fixed policy.

:class:`LearnerBatch` has the interface of :class:`mm_env.batch.MarketBatch`, so the one-MM vector front-ends run on
it unchanged: with one learner against a fixed opponent (``CompetingMarketMakers-v0``), or with every market maker
learning (self-play: each market maker's view is one environment of the batch, and one policy drives them all).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from mm_env.batch import MarketBatch, check_count
from mm_env.competition.config import CompetitionConfig
from mm_env.dynamics import MarketState
from mm_env.opponents import Opponent, make_opponent
from mm_env.params import CompetitionParams
from mm_env.xp import Number


class LearnerOutcome(NamedTuple):
    """What a step gave the learners' views: their rewards and whether their episodes ended."""

    reward: np.ndarray
    terminated: np.ndarray


def check_seats(seats: Sequence[int], num_market_makers: int, name: str = "seats") -> tuple[int, ...]:
    """Distinct market makers' indices in ``[0, M − 1]``, at least one, as a tuple; ``ValueError`` naming ``name``."""
    chosen = list(seats)
    integers = all(isinstance(j, (int, np.integer)) and not isinstance(j, bool) for j in chosen)
    m = num_market_makers
    if not chosen or not integers or len(set(chosen)) != len(chosen) or any(not 0 <= j < m for j in chosen):
        raise ValueError(f"{name}={seats!r} is invalid: must be distinct market makers in [0, {m - 1}]")
    return tuple(int(j) for j in chosen)


class LearnerBatch:
    """``num_games`` games whose market makers in ``learners`` act; the others quote by ``opponent``.

    The views are ordered game by game, then learner by learner: view ``g·k + i`` is learner ``learners[i]`` of game
    ``g``. Each view observes its market maker's observation of :class:`CompetitionConfig` and gets its reward. A
    game's views end together, and a reset of any view of a game resets the whole game. A view's ``info`` is its
    game's (:meth:`CompetitionConfig.step_info`), its market maker's entries picked, with ``won`` (the trader came
    to it) for the game's ``winner``.
    """

    def __init__(
        self,
        config: CompetitionConfig,
        num_games: int,
        learners: Sequence[int] = (0,),
        opponent: Opponent | None = None,
        max_episode_steps: int | None = None,
    ) -> None:
        m = config.num_market_makers
        self.learners = np.array(check_seats(learners, m, "learners"))
        self.others = np.setdiff1d(np.arange(m), self.learners)
        if len(self.others) and opponent is None:
            raise ValueError(f"market makers {self.others.tolist()} do not learn: give an opponent policy for them")
        if not len(self.others) and opponent is not None:
            raise ValueError("every market maker learns (self-play): there is no opponent to give")
        self.games = MarketBatch(config, num_games)
        self.STATE_INFO_KEYS = config.STATE_INFO_KEYS
        self.TRADE_INFO_KEYS = tuple("won" if key == "winner" else key for key in config.TRADE_INFO_KEYS)
        self.config = config
        self.params: CompetitionParams = config.params
        self.opponent = None if opponent is None else make_opponent(opponent, config.params)
        self.num_games = self.games.num_envs
        self.num_envs = self.num_games * len(self.learners)
        self.max_episode_steps = (
            None if max_episode_steps is None else check_count("max_episode_steps", max_episode_steps)
        )

    @property
    def state(self) -> MarketState:
        """The games' state (``num_games`` environments)."""
        return self.games.state

    def _views(self, values: Number) -> np.ndarray:
        """Per-game ``(n,)`` or per-market-maker ``(n, M)`` values as per-view ``(n·k,)`` values."""
        values = np.asarray(values)
        if values.ndim == 1:
            return np.repeat(values, len(self.learners))
        return values[:, self.learners].reshape(-1)

    def _games(self, mask: np.ndarray) -> np.ndarray:
        per_game = np.asarray(mask, dtype=bool).reshape(self.num_games, len(self.learners))
        return np.asarray(per_game.any(axis=1))  # an array, per_game being 2-D (any()'s type allows a scalar too)

    def truncated(self, terminated: np.ndarray) -> np.ndarray:
        """Where ``max_episode_steps`` cuts the episode before it terminates."""
        if self.max_episode_steps is None:
            return np.zeros(self.num_envs, dtype=bool)
        return self._views(self.games.state.t >= self.max_episode_steps) & ~terminated

    def reset(self, mask: np.ndarray | None = None) -> None:
        """Start new episodes in every game, or in the games of the views where ``mask`` is true."""
        self.games.reset(None if mask is None else self._games(mask))

    def observe(self) -> np.ndarray:
        """Each view's observation, ``(n·k, d)``."""
        obs = self.games.observe()[:, self.learners]
        return obs.reshape(self.num_envs, obs.shape[-1])

    def state_info(self) -> dict[str, Any]:
        """Each view's state ``info`` arrays."""
        return {key: self._views(value) for key, value in self.config.state_info(self.games.state).items()}

    def step(
        self, actions: object, rng: np.random.Generator, active: np.ndarray | None = None
    ) -> tuple[LearnerOutcome, dict[str, np.ndarray]]:
        """Step the games: the learners quote ``actions`` ``(n·k, 2)``, the others their policy's offsets."""
        k = len(self.learners)
        array = np.asarray(actions)
        learner_bid, learner_ask = self.config.decode(
            array.reshape(self.num_games, k, 2) if array.shape == (self.num_envs, 2) else array,
            self.num_games,
            (self.num_games, k),
        )
        m = self.params.num_market_makers
        bid, ask = np.empty((self.num_games, m)), np.empty((self.num_games, m))
        if self.opponent is not None:
            other_bid, other_ask = (
                np.asarray(side, dtype=np.float64) for side in self.opponent.quote(self.state, self.params)
            )
            if other_bid.shape != bid.shape or other_ask.shape != ask.shape:
                raise ValueError(
                    f"opponent {self.opponent!r} quoted offsets of shapes {other_bid.shape} and {other_ask.shape}; "
                    f"a joint policy gives every market maker's, shape {bid.shape}"
                )
            if not (np.isfinite(other_bid).all() and np.isfinite(other_ask).all()):
                raise ValueError(f"opponent {self.opponent!r} quoted offsets that are not finite")
            bid[:, self.others] = self.params.on_grid(other_bid[:, self.others])
            ask[:, self.others] = self.params.on_grid(other_ask[:, self.others])
        bid[:, self.learners], ask[:, self.learners] = learner_bid, learner_ask
        before = self.games.state
        outcome = self.games.step_offsets(bid, ask, rng, None if active is None else self._games(active))
        game_info = self.config.step_info(before, self.games.state, bid, ask, outcome)
        game_info["winner"] = np.asarray(outcome.winner)[:, None] == np.arange(m)  # per market maker: won
        info = {"won" if key == "winner" else key: self._views(value) for key, value in game_info.items()}
        terminated = self._views(np.asarray(outcome.terminated).astype(bool))
        if active is not None:
            terminated &= np.asarray(active, dtype=bool)
        return LearnerOutcome(self._views(outcome.reward), terminated), info
