"""`python -m syndicate` runs the same CLI as the `syndicate` script."""

from syndicate.cli import main

# The guard matters: parser worker processes are spawned, and spawning re-imports __main__.
if __name__ == "__main__":
    main()
