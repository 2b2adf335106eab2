"""The management API (/api/v2): one router per resource, errors rendered in one place."""
