"""Bounces, complaints and unsubscribe mail: reading what comes back."""
