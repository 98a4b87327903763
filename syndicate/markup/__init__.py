"""Untrusted HTML made safe: what ingest does to every post and the digest to an admin's intro
(sanitise.py), and the bound on nesting that keeps it linear (nesting.py)."""
