"""Mail that comes back to us: bounces, complaints, auto-replies and unsubscribe mail.

reports     read one message into plain data (what it is, whom it reports)
imap        the [bounces.imap] mailbox: list, fetch without marking read, move away
mailfiles   one message, an mbox or a Maildir given to `bounces process`
intake      match a report to a subscriber on evidence we signed or sent, store it once
polling     one poll of the mailbox: each mail processed, then moved
"""
