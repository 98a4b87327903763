"""The digest's live preview: what is wrong with the upcoming issue (problems.py)."""
