"""`python -m bench` runs one experiment (or a multirun grid with `-m`)."""

from bench.app import main

if __name__ == "__main__":
    main()
