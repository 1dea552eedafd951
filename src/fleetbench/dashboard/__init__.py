"""``fleetbench dashboard``: a live web view over one or more results folders.

A small Starlette app (``app``) serves one static page (``static/``) that draws the
report's own chart definitions with the bundled Vega JavaScript, from JSON views
(``views``) over read-only SQL (``queries``), and refreshes them while a batch writes.
Starlette and uvicorn come with ``fleetbench[dashboard]``; nothing here is imported
by the other commands.
"""
