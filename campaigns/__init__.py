"""The composition root (compose.py), the processes it runs (service.py) and the
`campaigns` command (cli.py). See docs/architecture.md."""
