"""Publishing: feed documents, monthly archives, atomic writes, WebSub pings."""
