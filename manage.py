#!/usr/bin/env python
from kartu.cli import main

if __name__ == "__main__":
    main()
