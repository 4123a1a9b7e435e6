"""Evaluation: the LFW View-2 verification protocol and its report."""
