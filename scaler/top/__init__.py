"""scaler_top: a terminal monitor of the status a scheduler publishes (see docs/monitoring.md).

- ``figures``: pure functions from a status message to labelled figures, table rows and sort orders;
- ``address_hint``: what to say when no status comes (the monitor is on the scheduler's port + 1);
- ``feed``: a thread that keeps the newest status, so no view blocks on the socket;
- ``text_view``: the plain-text view (``--once``, and the fallback without textual);
- ``app``: the full-screen textual app (imported only when textual is installed: ``scaler[monitor]``).
"""
