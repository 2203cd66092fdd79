"""python -m pgfaces.client: see pgfaces.client.cli."""

from pgfaces.client.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
