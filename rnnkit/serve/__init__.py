"""``rnnkit serve``: trained runs over HTTP (FastAPI on uvicorn) and a web page to try them.

* :mod:`rnnkit.serve.app` - the app factory: routes made from what each run's task declares
  (:meth:`rnnkit.tasks.task.Task.serve_routes`), streamed generation as server-sent events, uploads.
* :mod:`rnnkit.serve.limits` - body size, API key, bounded concurrency (503 + Retry-After past it).
* :mod:`rnnkit.serve.validate` / :mod:`rnnkit.serve.uploads` - requests checked against the route's schema,
  uploaded files checked to be audio / image / MIDI within the limits; every refusal a 4xx JSON error.
* :mod:`rnnkit.serve.runs` - the loaded runs; :mod:`rnnkit.serve.command` - the CLI command.
* ``static/`` - the page (HTML, CSS, JavaScript; no build step, nothing from the internet).

This package names no task (a test keeps it so); fastapi, uvicorn and jsonschema are the ``serve`` extra.
"""
