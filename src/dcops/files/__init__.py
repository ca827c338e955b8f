"""Reading the files operators write (YAML with line numbers in every error)."""
