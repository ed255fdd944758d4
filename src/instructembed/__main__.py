"""`python -m instructembed ...` (and `torchrun ... -m instructembed train ...`)."""

from instructembed.cli import main

main()
