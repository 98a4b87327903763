"""`python -m syndicate` runs the same CLI as the `syndicate` script."""

from syndicate.cli import main

main()
