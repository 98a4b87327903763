"""Forum linking: every post gets its discussion thread (feed link, URL template, Discourse)."""
