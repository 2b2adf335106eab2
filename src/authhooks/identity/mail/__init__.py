"""Mail: the SMTP sender, the mails' templates, and the durable outbox that sends
them (password reset and email verification links)."""
