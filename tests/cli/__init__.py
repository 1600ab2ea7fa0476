"""Tests of the command line, the config file, the simulation and the built-in handlers."""
