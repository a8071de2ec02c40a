"""Configuration: the UCI-like parser, wg-quick files, and the validated model."""
