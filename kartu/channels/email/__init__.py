"""The email channel: an SMTP listener (and optional IMAP polling) into the desk, replies by SMTP.

See ``parse`` (MIME, quotes, auto-reply rules), ``inbound`` (storing), ``listener`` (SMTP),
``imap`` (polling) and ``adapter`` (replies).
"""
