"""``python -m publish_server.admin`` (what ``nbpress portal`` runs): see :mod:`entry`."""

from .entry import main

if __name__ == "__main__":  # pragma: no cover - exercised through `nbpress portal ...`
    main(prog_name="nbpress portal")
