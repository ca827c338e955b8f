"""Layer 1: who may do what. Roles, API tokens and the audit trail."""
