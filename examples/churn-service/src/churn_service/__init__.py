"""Churn prediction: a logistic regression trained from a CSV, served over HTTP."""

__version__ = "0.1.0"
