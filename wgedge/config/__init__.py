"""Configuration: loader.py reads a file (uci.py, wgquick.py), validate.py checks it
against schema.py into the records the router side runs."""
