"""The pure engine: journal, replay, retry policy, run states, lease maths.

Nothing under this package performs I/O or imports an AWS library; it is
driven through the callables and data it is given.
"""
