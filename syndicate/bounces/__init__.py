"""Mail that comes back to us: bounce reports, complaints, auto-replies and people's replies.

`reports.read_report` reads one such message into plain data and decides nothing else; what a
report does to a subscriber is the caller's business. Nothing here imports the rest of the
package, the network or the database.
"""
