"""The sandbox that runs untrusted hook code: warm, isolated worker processes.

It knows nothing of OAuth or users: it runs one function of one code version
with JSON arguments and returns an outcome. The entry point is
``authhooks.runtime.supervisor.Runtime``. This package is also imported inside
the sandbox (by ``worker.py``), so this file imports nothing.
"""
