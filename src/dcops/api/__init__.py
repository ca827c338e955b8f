"""Layer 6: the REST API. Routes call services; they hold no domain logic."""
