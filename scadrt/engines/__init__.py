"""Engines that run a program directory: the scheduler core and the local (process) engine."""
