"""``python -m governance.cli`` is ``gov``."""

from governance.cli._app import main

main()
