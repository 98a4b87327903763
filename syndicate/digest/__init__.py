"""The digest: pick a period's posts, render the issue from templates, personalise it."""
