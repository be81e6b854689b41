"""How an action reaches a host: `local` (this machine, optionally inside a network namespace)
or `ssh` (the OpenSSH client). Both take argument lists, never a shell line."""
