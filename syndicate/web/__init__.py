"""The public web app: feeds over HTTP, the home page, subscription flows, operations."""
