"""The sans-IO protocol core: bytes in, events out; events in, bytes out.

Nothing in this package performs I/O, reads the clock, or imports another gunicorn
package. Drivers feed it bytes and write the bytes it returns.
"""
