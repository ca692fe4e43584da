"""Evaluations: dataset -> solver (engine call) -> scorer -> metric, results as JSON."""
