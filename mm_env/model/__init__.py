"""The market as stateless components: frozen, validated dataclasses with pure, vectorised methods.

Each component turns the step's raw random draws into events, given the state, inside
:func:`mm_env.dynamics.transition`; none holds a random generator or any state of its own. A model
(:class:`mm_env.params.MarketParams`) is their composition.
"""

from mm_env.model.fill import ArticleFill, ExponentialFill
from mm_env.model.flow import OrderFlow, Trader
from mm_env.model.impact import PriceImpact
from mm_env.model.noise import MidNoise
from mm_env.model.objective import Objective

__all__ = ["ArticleFill", "ExponentialFill", "MidNoise", "Objective", "OrderFlow", "PriceImpact", "Trader"]
