"""Backups of checkpoints, datasets and the control plane's own state.

A repository holds content-defined chunks of the files backed up, deduplicated by a keyed
hash, compressed with zstd and encrypted with AES-256-GCM, packed into pack files with an
index, and snapshots as signed manifests. The format is documented in
``docs/backup-format.md``. This package is pure: it reads and writes the files it is asked
to back up or restore, and talks to a repository only through a `Storage`
(``storage.py``); the local-directory and S3 storages live in ``dcops.backends``.
"""
