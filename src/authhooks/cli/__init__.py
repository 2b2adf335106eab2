"""The ``authhooks`` command: one module per command group."""
