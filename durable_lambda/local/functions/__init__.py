"""The three functions as the dev server runs them, from the installed package.

A user's own project has no ``functions/`` folder of this repository: these
modules are its ``functions/*/app.py``, each building its handler during the
init phase (cold start), as Lambda runs them.
"""
