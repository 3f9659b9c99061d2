"""Real servers on 127.0.0.1 and free ports, for the tests and the demo: each a
context manager that starts the server and stops it on exit."""
