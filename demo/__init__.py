"""The demo: a lab of real services on loopback (`demo.lab`) and `make demo` (`demo.run`)."""
