"""The web dashboard: static pages served without auth that read the API with a token."""
