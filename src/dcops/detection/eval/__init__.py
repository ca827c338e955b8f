"""Evaluation on public labelled benchmarks (NAB, SMD) exactly as they are published."""
