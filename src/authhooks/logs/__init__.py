"""Hook logs: the live bus, the relay between server processes, stored records
and their queries, captured events for replay."""
