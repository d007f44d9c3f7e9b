"""Helpers of the security analysis tests (docs/security.md): the pinned independent analysers,
their output parsed into connectivity edges, and hypothesis strategies of hostile input."""
