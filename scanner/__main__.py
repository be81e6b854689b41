"""`python -m scanner` is `posture`."""

from scanner.cli import main

main()
