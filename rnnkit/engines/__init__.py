"""Engines: how a whole sequence runs (reference loop, explicit BPTT, native torch, GPU kernels,
parallel scan), dispatch and explain()."""
from .base import DirectionJob, DirectionMasks, DirectionResult, Engine, EngineError, LazyEngine, Request
from .registry import REGISTRY, Explanation, register_engine

__all__ = ["Engine", "EngineError", "Request", "DirectionJob", "DirectionMasks", "DirectionResult",
           "REGISTRY", "Explanation", "LazyEngine", "register_engine"]
