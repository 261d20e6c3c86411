"""Quoting policies.

The article's rule and other heuristics, the closed forms, the exact optimum's tables, trained models, and the joint
policies and named opponents of competing market makers.

A policy quotes from the model state (:class:`Policy`); :mod:`agents.exact` computes the exact optimum and judges any
policy that is a function of the exact grid's Markov state.
"""

from agents.policies.base import EachOnItsOwn, Policy, grid_states
from agents.policies.heuristics import ArticleRule, ConstantSpread, LinearSkew
from agents.policies.tabular import DPPolicy, TabularPolicy

__all__ = [
    "ArticleRule",
    "ConstantSpread",
    "DPPolicy",
    "EachOnItsOwn",
    "LinearSkew",
    "Policy",
    "TabularPolicy",
    "grid_states",
]
