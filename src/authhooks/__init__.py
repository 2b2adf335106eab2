"""authhooks: a self-hosted identity server whose owners customise it with hooks."""

__version__ = "0.1.0"
