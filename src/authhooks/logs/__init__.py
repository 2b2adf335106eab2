"""Hook logs: invocation records (stored in batches by ``writer``; queried,
read in order and pruned by ``records``), the live bus of console lines
(``bus``), carried between server processes by ``notify``, and the SSE stream
that joins the two (``stream``)."""
