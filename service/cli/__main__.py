"""``python -m cnnplan.service.cli``: the same as the ``cnnplan`` console script."""

from cnnplan.service.cli.main import main

main()
