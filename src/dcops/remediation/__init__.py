"""Remediation: diagnoses turned into safe, audited actions, within guardrails."""
