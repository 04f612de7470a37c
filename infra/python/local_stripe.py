"""localstripe, the local stand-in for Stripe, as the project runs it.

localstripe writes its whole state to /tmp/localstripe.pickle after every change, and loads it again
unless told `--from-scratch`. The local stack wants neither: each run starts empty (like moto), and two
stacks on one machine (a `cargo xtask dev` and a `cargo xtask test`) must not share a file. This keeps
the state in memory only and then starts localstripe's own server with the given arguments.
"""

import sys

import localstripe.resources as resources
from localstripe.server import start

resources.Store.dump_to_disk = lambda self: None

if __name__ == "__main__":
    if "--from-scratch" not in sys.argv:
        sys.argv.append("--from-scratch")
    start()
